//! Running the `jg-hmac` binary as a process, for the CLI test files.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::ffi::OsString;
use std::io::Write;
use std::process::{Command, Stdio};

/// What one run of the binary gave.
pub struct Run {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Run {
    pub fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// Runs the binary with `args`, `secret` (if any) in `JG_TEST_SECRET`, and `stdin`, and
/// fails the test if it panicked.
pub fn run_with(args: &[&str], secret: Option<OsString>, stdin: &[u8]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_jg-hmac"));
    cmd.args(args)
        .env_remove("JG_TEST_SECRET")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(secret) = secret {
        cmd.env("JG_TEST_SECRET", secret);
    }
    let mut child = cmd.spawn().expect("spawn jg-hmac");
    let mut pipe = child.stdin.take().unwrap();
    let input = stdin.to_vec();
    // The tool may stop reading early (oversized input): a broken pipe is expected then.
    let writer = std::thread::spawn(move || {
        let _ = pipe.write_all(&input);
    });
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "jg-hmac panicked: {stderr}");
    Run {
        code: output.status.code().expect("exited normally"),
        stdout: output.stdout,
        stderr,
    }
}
