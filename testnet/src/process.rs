//! A `goodwill` process a benchmark starts on loopback and stops when it is dropped.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use eyre::{WrapErr, eyre};

/// A running `goodwill node` or `goodwill light`: killed when dropped.
pub struct Running {
    /// The process.
    pub child: Child,
    /// Its HTTP API.
    pub url: String,
    /// Its peer-to-peer address (a main node's; empty for a light peer).
    pub p2p: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `goodwill` binary a benchmark runs: the one `GOODWILL_BIN` names, or the one next to the
/// benchmark's own.
pub fn goodwill_binary() -> eyre::Result<PathBuf> {
    Ok(match std::env::var_os("GOODWILL_BIN") {
        Some(path) => path.into(),
        None => std::env::current_exe()?.with_file_name("goodwill"),
    })
}

/// Starts `goodwill COMMAND ARGS` on ephemeral loopback ports and waits until it announces its
/// HTTP API (and, for `node`, its peer-to-peer address).
pub fn start(binary: &Path, command: &str, args: &[&std::ffi::OsStr]) -> eyre::Result<Running> {
    start_program(binary, Some(command), command == "node", args)
}

/// Starts `BINARY [COMMAND] ARGS` on ephemeral loopback ports and waits until it announces its
/// HTTP API (and its peer-to-peer address if `announces_p2p`): for binaries with one command,
/// such as `goodwill-light`.
pub fn start_program(
    binary: &Path,
    command: Option<&str>,
    announces_p2p: bool,
    args: &[&std::ffi::OsStr],
) -> eyre::Result<Running> {
    let shown = command.unwrap_or("");
    let mut child = Command::new(binary)
        .args(command)
        .args(args)
        .args(["--http", "127.0.0.1:0", "--listen", "/ip4/127.0.0.1/tcp/0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .wrap_err_with(|| format!("starting {}", binary.display()))?;
    let stdout = child.stdout.take().ok_or_else(|| eyre!("no stdout"))?;
    let mut lines = BufReader::new(stdout).lines();
    let (mut url, mut p2p) = (None, None);
    while url.is_none() || (announces_p2p && p2p.is_none()) {
        let line = lines
            .next()
            .ok_or_else(|| eyre!("{} {shown} exited before announcing itself", binary.display()))??;
        if let Some(rest) = line.strip_prefix("HTTP API listening on ") {
            url = Some(rest.to_string());
        } else if let Some(rest) = line.strip_prefix("P2P listening on ") {
            p2p = Some(rest.to_string());
        }
    }
    std::thread::spawn(move || lines.for_each(drop));
    Ok(Running { child, url: url.unwrap_or_default(), p2p: p2p.unwrap_or_default() })
}
