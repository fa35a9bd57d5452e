//! [`Reaped`]: a child process that does not outlive its test.

use std::process::Child;

/// A child process killed and reaped when dropped (also when the test
/// panics), so no test leaves processes behind.
#[derive(Debug)]
pub struct Reaped(pub Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
