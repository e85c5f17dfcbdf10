//! Camera-sensor control: register programming over I2C, exposure/gain, trigger and LED.
//! `no_std`, with no allocation, so a camera-side microcontroller runs this very driver.
//!
//! Written against the `embedded-hal` 1.0 traits rather than a Linux API so the same driver
//! runs on the board (e.g. via `linux-embedded-hal`), on a camera-side microcontroller, and
//! in tests against `embedded-hal-mock` with exact bus transactions.
//!
//! The register model is the one shared by OmniVision/Sony-style sensors (OV5647, IMX219,
//! …): a 7-bit I2C address, 16-bit register addresses sent big-endian, 8-bit values. Which
//! registers hold what is in [`SensorConfig`].

use embedded_hal::digital::{self, OutputPin};
use embedded_hal::i2c::{self, I2c, SevenBitAddress};

/// Something went wrong talking to the sensor.
///
/// Generic over the HAL's error types so callers keep the bus-specific detail
/// (e.g. [`i2c::Error::kind`] distinguishes a NACK — sensor absent or asleep — from bus
/// arbitration trouble).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SensorError<I, P> {
    #[error("I2C error: {0:?}")]
    I2c(I),
    #[error("trigger/LED pin error: {0:?}")]
    Pin(P),
    #[error("wrong chip id: expected {expected:#06x}, found {found:#06x}")]
    WrongChipId { expected: u16, found: u16 },
}

/// Where a particular sensor keeps its identity, exposure and gain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SensorConfig {
    /// 7-bit I2C address.
    pub address: SevenBitAddress,
    /// First of two registers holding the chip id, most significant byte first (read in
    /// one transaction: these sensors auto-increment the register address).
    pub chip_id_reg: u16,
    /// Expected chip id; `init` refuses to program anything else.
    pub chip_id: u16,
    /// Exposure registers, most significant first; together they hold a 24-bit value.
    pub exposure_regs: [u16; 3],
    /// The exposure value is `lines << exposure_shift` (OV5647 counts 1/16 lines: 4).
    pub exposure_shift: u8,
    /// Exposure requests above this many lines are clamped to it.
    pub max_exposure_lines: u32,
    /// Analogue-gain registers, most significant first.
    pub gain_regs: [u16; 2],
    /// Gain requests above this are clamped to it (sensor-specific units).
    pub max_gain: u16,
}

impl SensorConfig {
    /// An OV5647-like layout: address 0x36, chip id 0x5647 at 0x300A/0x300B, exposure in
    /// 0x3500..=0x3502 (1/16-line units), 10-bit gain in 0x350A/0x350B.
    ///
    /// Illustrative: check every value against the datasheet of the part actually fitted.
    pub const GENERIC: SensorConfig = SensorConfig {
        address: 0x36,
        chip_id_reg: 0x300A,
        chip_id: 0x5647,
        exposure_regs: [0x3500, 0x3501, 0x3502],
        exposure_shift: 4,
        max_exposure_lines: 0xFFFF,
        gain_regs: [0x350A, 0x350B],
        max_gain: 0x03FF,
    };
}

/// An example register table in the shape [`Sensor::init`] takes.
///
/// Illustrative only: it shows the usual structure (standby, clocks, format, manual
/// exposure/gain, stream on) with OV5647-like addresses, but it is **not** a validated mode
/// for any real sensor. Real tables come from the vendor and are hundreds of entries long;
/// entries that need a delay afterwards (such as a software reset) must be split out.
pub const EXAMPLE_INIT_TABLE: &[(u16, u8)] = &[
    (0x0100, 0x00), // standby while configuring
    (0x3034, 0x18), // PLL: 8-bit RAW
    (0x3035, 0x21), // PLL: system clock divider
    (0x3036, 0x46), // PLL: multiplier
    (0x3808, 0x02), // output width  = 0x0280 = 640
    (0x3809, 0x80),
    (0x380A, 0x01), // output height = 0x01E0 = 480
    (0x380B, 0xE0),
    (0x3503, 0x03), // manual exposure and gain (set_exposure / set_gain own them)
    (0x0100, 0x01), // stream on
];

/// The [`SensorError`] of a [`Sensor`] on bus `I2C` with pin `PIN`.
pub type ErrorOf<I2C, PIN> =
    SensorError<<I2C as i2c::ErrorType>::Error, <PIN as digital::ErrorType>::Error>;

/// A camera sensor on an I2C bus, plus the GPIO that triggers a capture / drives the LED.
pub struct Sensor<I2C, PIN> {
    i2c: I2C,
    pin: PIN,
    config: SensorConfig,
}

impl<I2C: I2c, PIN: OutputPin> Sensor<I2C, PIN> {
    /// Wrap the bus and pin; talks to nothing until called.
    pub fn new(i2c: I2C, pin: PIN, config: SensorConfig) -> Self {
        Self { i2c, pin, config }
    }

    /// Give the bus and pin back (e.g. to share the bus, or to check mocks).
    pub fn release(self) -> (I2C, PIN) {
        (self.i2c, self.pin)
    }

    pub fn config(&self) -> &SensorConfig {
        &self.config
    }

    /// Read the chip id (one `write_read`: register address out, two bytes back).
    pub fn chip_id(&mut self) -> Result<u16, ErrorOf<I2C, PIN>> {
        let mut id = [0u8; 2];
        self.i2c
            .write_read(
                self.config.address,
                &self.config.chip_id_reg.to_be_bytes(),
                &mut id,
            )
            .map_err(SensorError::I2c)?;
        Ok(u16::from_be_bytes(id))
    }

    /// Check the chip id, then write `table` in order, one register per write.
    ///
    /// The id check comes first so a wrong or absent part is never sent a table meant
    /// for another sensor. Stops at the first error; the sensor is then half-configured
    /// and should be reset before retrying.
    pub fn init(&mut self, table: &[(u16, u8)]) -> Result<(), ErrorOf<I2C, PIN>> {
        let found = self.chip_id()?;
        if found != self.config.chip_id {
            return Err(SensorError::WrongChipId {
                expected: self.config.chip_id,
                found,
            });
        }
        for &(reg, value) in table {
            self.write_register(reg, value)?;
        }
        Ok(())
    }

    /// Write one register: `[addr_hi, addr_lo, value]`.
    pub fn write_register(&mut self, reg: u16, value: u8) -> Result<(), ErrorOf<I2C, PIN>> {
        let [hi, lo] = reg.to_be_bytes();
        self.i2c
            .write(self.config.address, &[hi, lo, value])
            .map_err(SensorError::I2c)
    }

    /// Read one register.
    pub fn read_register(&mut self, reg: u16) -> Result<u8, ErrorOf<I2C, PIN>> {
        let mut value = [0u8];
        self.i2c
            .write_read(self.config.address, &reg.to_be_bytes(), &mut value)
            .map_err(SensorError::I2c)?;
        Ok(value[0])
    }

    /// Set the exposure time in lines, clamped to `max_exposure_lines` (and to what the
    /// 24-bit register triple can hold); returns the lines actually set.
    ///
    /// Written most significant register first. The three writes are not atomic: a frame
    /// starting in between may use a mixed value (use the sensor's group-hold feature in
    /// the table if that matters).
    pub fn set_exposure(&mut self, lines: u32) -> Result<u32, ErrorOf<I2C, PIN>> {
        let shift = u32::from(self.config.exposure_shift.min(24));
        let register_max = 0x00FF_FFFF_u32 >> shift;
        let lines = lines.min(self.config.max_exposure_lines).min(register_max);
        let [_, hi, mid, lo] = (lines << shift).to_be_bytes();
        let [r_hi, r_mid, r_lo] = self.config.exposure_regs;
        self.write_register(r_hi, hi)?;
        self.write_register(r_mid, mid)?;
        self.write_register(r_lo, lo)?;
        Ok(lines)
    }

    /// Set the analogue gain, clamped to `max_gain`; returns the gain actually set.
    pub fn set_gain(&mut self, gain: u16) -> Result<u16, ErrorOf<I2C, PIN>> {
        let gain = gain.min(self.config.max_gain);
        let [hi, lo] = gain.to_be_bytes();
        let [r_hi, r_lo] = self.config.gain_regs;
        self.write_register(r_hi, hi)?;
        self.write_register(r_lo, lo)?;
        Ok(gain)
    }

    /// Pulse the trigger pin high then low to start a capture (and flash the LED).
    ///
    /// The pulse is as long as the GPIO writes take (microseconds on Linux); a sensor that
    /// needs a longer minimum width needs a delay here. Leaves the pin low (LED off).
    pub fn trigger(&mut self) -> Result<(), ErrorOf<I2C, PIN>> {
        self.pin.set_high().map_err(SensorError::Pin)?;
        self.pin.set_low().map_err(SensorError::Pin)
    }

    /// Drive the trigger/LED pin steadily (e.g. illumination during a burst).
    pub fn set_led(&mut self, on: bool) -> Result<(), ErrorOf<I2C, PIN>> {
        if on {
            self.pin.set_high().map_err(SensorError::Pin)
        } else {
            self.pin.set_low().map_err(SensorError::Pin)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_hal::i2c::ErrorKind;
    use embedded_hal_mock::eh1::digital::{
        Mock as PinMock, State as PinState, Transaction as PinTx,
    };
    use embedded_hal_mock::eh1::i2c::{Mock as I2cMock, Transaction as I2cTx};
    use embedded_hal_mock::eh1::MockError;

    const ADDR: u8 = 0x36;

    fn sensor(i2c: &[I2cTx], pin: &[PinTx]) -> Sensor<I2cMock, PinMock> {
        Sensor::new(I2cMock::new(i2c), PinMock::new(pin), SensorConfig::GENERIC)
    }

    /// Every expected transaction happened, and nothing else.
    fn finish(sensor: Sensor<I2cMock, PinMock>) {
        let (mut i2c, mut pin) = sensor.release();
        i2c.done();
        pin.done();
    }

    fn id_read(id: [u8; 2]) -> I2cTx {
        I2cTx::write_read(ADDR, vec![0x30, 0x0A], id.to_vec())
    }

    fn reg_write(reg: u16, value: u8) -> I2cTx {
        let [hi, lo] = reg.to_be_bytes();
        I2cTx::write(ADDR, vec![hi, lo, value])
    }

    #[test]
    fn init_checks_id_then_writes_table_in_order() {
        let mut expected = vec![id_read([0x56, 0x47])];
        expected.extend(EXAMPLE_INIT_TABLE.iter().map(|&(r, v)| reg_write(r, v)));
        assert_eq!(expected[1], I2cTx::write(ADDR, vec![0x01, 0x00, 0x00]));
        let mut s = sensor(&expected, &[]);
        s.init(EXAMPLE_INIT_TABLE).expect("init");
        finish(s);
    }

    #[test]
    fn wrong_chip_id_writes_nothing() {
        let mut s = sensor(&[id_read([0x02, 0x19])], &[]);
        let err = s.init(EXAMPLE_INIT_TABLE).expect_err("must refuse");
        assert_eq!(
            err,
            SensorError::WrongChipId {
                expected: 0x5647,
                found: 0x0219
            }
        );
        assert_eq!(
            err.to_string(),
            "wrong chip id: expected 0x5647, found 0x0219"
        );
        finish(s);
    }

    #[test]
    fn i2c_errors_propagate_and_stop_the_table() {
        // NACK on the id read (sensor absent or powered down).
        let nack = ErrorKind::NoAcknowledge(embedded_hal::i2c::NoAcknowledgeSource::Address);
        let mut s = sensor(&[id_read([0, 0]).with_error(nack)], &[]);
        assert_eq!(s.init(EXAMPLE_INIT_TABLE), Err(SensorError::I2c(nack)));
        finish(s);

        // Failure on the third table entry: the rest is not attempted.
        let table = &EXAMPLE_INIT_TABLE[..5];
        let expected = [
            id_read([0x56, 0x47]),
            reg_write(table[0].0, table[0].1),
            reg_write(table[1].0, table[1].1),
            reg_write(table[2].0, table[2].1).with_error(ErrorKind::Other),
        ];
        let mut s = sensor(&expected, &[]);
        assert_eq!(s.init(table), Err(SensorError::I2c(ErrorKind::Other)));
        finish(s);
    }

    #[test]
    fn exposure_is_split_msb_first_and_clamped() {
        let expected = [
            // 1000 lines << 4 = 16000 = 0x003E80
            reg_write(0x3500, 0x00),
            reg_write(0x3501, 0x3E),
            reg_write(0x3502, 0x80),
            // clamped to 0xFFFF lines << 4 = 0x0FFFF0
            reg_write(0x3500, 0x0F),
            reg_write(0x3501, 0xFF),
            reg_write(0x3502, 0xF0),
            reg_write(0x3500, 0x00),
            reg_write(0x3501, 0x00),
            reg_write(0x3502, 0x00),
        ];
        let mut s = sensor(&expected, &[]);
        assert_eq!(s.set_exposure(1000), Ok(1000));
        assert_eq!(s.set_exposure(u32::MAX), Ok(0xFFFF));
        assert_eq!(s.set_exposure(0), Ok(0));
        finish(s);
    }

    #[test]
    fn exposure_clamps_to_register_width_too() {
        let config = SensorConfig {
            exposure_shift: 0,
            max_exposure_lines: u32::MAX,
            ..SensorConfig::GENERIC
        };
        let expected = [
            reg_write(0x3500, 0xFF),
            reg_write(0x3501, 0xFF),
            reg_write(0x3502, 0xFF),
        ];
        let mut s = Sensor::new(I2cMock::new(&expected), PinMock::new(&[]), config);
        assert_eq!(s.set_exposure(0x0123_4567), Ok(0x00FF_FFFF));
        finish(s);
    }

    #[test]
    fn gain_is_split_and_clamped() {
        let expected = [
            reg_write(0x350A, 0x01),
            reg_write(0x350B, 0x23),
            reg_write(0x350A, 0x03),
            reg_write(0x350B, 0xFF),
        ];
        let mut s = sensor(&expected, &[]);
        assert_eq!(s.set_gain(0x0123), Ok(0x0123));
        assert_eq!(s.set_gain(u16::MAX), Ok(0x03FF));
        finish(s);
    }

    #[test]
    fn gain_write_error_propagates() {
        let mut s = sensor(
            &[reg_write(0x350A, 0x00).with_error(ErrorKind::ArbitrationLoss)],
            &[],
        );
        assert_eq!(
            s.set_gain(0x10),
            Err(SensorError::I2c(ErrorKind::ArbitrationLoss))
        );
        finish(s);
    }

    #[test]
    fn register_read_and_write() {
        let expected = [
            I2cTx::write_read(ADDR, vec![0x35, 0x03], vec![0x03]),
            I2cTx::write(ADDR, vec![0x35, 0x03, 0x00]),
        ];
        let mut s = sensor(&expected, &[]);
        assert_eq!(s.read_register(0x3503), Ok(0x03));
        assert_eq!(s.write_register(0x3503, 0x00), Ok(()));
        finish(s);
    }

    #[test]
    fn trigger_pulses_high_then_low_and_led_follows() {
        let expected = [
            PinTx::set(PinState::High),
            PinTx::set(PinState::Low),
            PinTx::set(PinState::High),
            PinTx::set(PinState::Low),
        ];
        let mut s = sensor(&[], &expected);
        s.trigger().expect("trigger");
        s.set_led(true).expect("led on");
        s.set_led(false).expect("led off");
        finish(s);
    }

    #[test]
    fn pin_errors_propagate() {
        let err = MockError::Io(std::io::ErrorKind::NotConnected);
        // Fails going high: the low edge is not attempted.
        let mut s = sensor(&[], &[PinTx::set(PinState::High).with_error(err.clone())]);
        assert!(matches!(
            s.trigger(),
            Err(SensorError::Pin(MockError::Io(
                std::io::ErrorKind::NotConnected
            )))
        ));
        finish(s);
        let mut s = sensor(
            &[],
            &[
                PinTx::set(PinState::High),
                PinTx::set(PinState::Low).with_error(err),
            ],
        );
        assert!(matches!(s.trigger(), Err(SensorError::Pin(_))));
        finish(s);
    }
}
