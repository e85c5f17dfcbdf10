//! Arbitrary bytes into the link decoder: it must never panic, anything it accepts must
//! survive a re-encode round trip, it must resynchronise after garbage, and chunks it
//! yields must never panic the frame assembler.
#![no_main]

use libfuzzer_sys::fuzz_target;
use unveil_shared::link::{encode, FrameAssembler, FrameDecoder, Message, MAX_ENCODED_LEN};

fuzz_target!(|data: &[u8]| {
    let mut out = [0u8; MAX_ENCODED_LEN];
    let mut assembler = FrameAssembler::new(4096);
    let mut decoder = FrameDecoder::<MAX_ENCODED_LEN>::new();
    for result in decoder.feed(data) {
        let Ok(msg) = result else { continue };
        let frame = encode(&msg, &mut out).expect("a decoded message re-encodes");
        let again: Vec<_> = FrameDecoder::<MAX_ENCODED_LEN>::new().feed(frame).collect();
        assert_eq!(again, [Ok(msg.clone())]);
        if let Message::FrameChunk(chunk) | Message::RestoredChunk(chunk) = &msg {
            let _ = assembler.push(chunk);
        }
    }

    // A small decoder exercises the oversize/discard path on the same input.
    let mut small = FrameDecoder::<64>::new();
    small.feed(data).for_each(drop);

    // Whatever came before, a delimiter followed by a good frame decodes.
    let bye = encode(&Message::Bye, &mut out).expect("encode");
    let mut tail = vec![0u8];
    tail.extend_from_slice(bye);
    assert_eq!(decoder.feed(&tail).last(), Some(Ok(Message::Bye)));
    assert_eq!(small.feed(&tail).last(), Some(Ok(Message::Bye)));
});
