//! One-line error messages for the binaries' edges.

use alloc::string::{String, ToString};

/// `error` and its causes on one line, `outer: cause: cause`, skipping a cause whose text
/// the line already holds. Library errors here put their cause in their own message *and*
/// expose it as `source()` (so code can match on it), which anyhow's `{:#}` would print
/// twice.
pub fn one_line(error: &(dyn core::error::Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        cause = c.source();
    }
    line
}

/// The process exit of a binary's `run`: success, or `error: <one line>` on stderr and
/// failure.
#[cfg(feature = "std")]
pub fn exit<E>(result: Result<(), E>) -> std::process::ExitCode
where
    E: AsRef<dyn core::error::Error + Send + Sync + 'static>,
{
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            std::eprintln!("error: {}", one_line(e.as_ref()));
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::fmt;

    #[derive(Debug)]
    struct Leaf;
    impl fmt::Display for Leaf {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("missing field `depth`")
        }
    }
    impl core::error::Error for Leaf {}

    /// A wrapper that may or may not repeat its cause in its own message.
    #[derive(Debug)]
    struct Wrap(&'static str, bool, Leaf);
    impl fmt::Display for Wrap {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            if self.1 {
                write!(f, "{}: {}", self.0, self.2)
            } else {
                f.write_str(self.0)
            }
        }
    }
    impl core::error::Error for Wrap {
        fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
            Some(&self.2)
        }
    }

    #[test]
    fn causes_are_appended_once() {
        let repeats = Wrap("run.json", true, Leaf);
        assert_eq!(one_line(&repeats), "run.json: missing field `depth`");
        let silent = Wrap("run.json", false, Leaf);
        assert_eq!(one_line(&silent), "run.json: missing field `depth`");
        assert_eq!(one_line(&Leaf), "missing field `depth`");
    }
}
