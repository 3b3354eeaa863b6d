//! Foreground I/O: a pty for `-t`, raw mode on the user's terminal, window
//! size and signal forwarding.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::pty::openpty;
use nix::sys::signal::{kill, Signal};
use nix::sys::termios::{self, SetArg, Termios};
use nix::unistd::Pid;
use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH};
use signal_hook::iterator::Signals;

/// A pty pair: the container gets the slave, we relay the master.
pub struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
}

pub fn open_pty() -> anyhow::Result<Pty> {
    let pair = openpty(None, None)?;
    copy_winsize(std::io::stdin().as_raw_fd(), pair.master.as_raw_fd());
    Ok(Pty {
        master: pair.master,
        slave: pair.slave,
    })
}

fn copy_winsize(from: i32, to: i32) {
    // SAFETY: TIOCGWINSZ/TIOCSWINSZ with a properly sized struct.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        if libc::ioctl(from, libc::TIOCGWINSZ, &mut ws) == 0 {
            libc::ioctl(to, libc::TIOCSWINSZ, &ws);
        }
    }
}

/// Puts the user's terminal in raw mode until dropped.
pub struct RawMode {
    saved: Option<Termios>,
}

impl RawMode {
    pub fn enable() -> RawMode {
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(stdin.as_fd()).ok();
        if let Some(orig) = &saved {
            let mut raw = orig.clone();
            termios::cfmakeraw(&mut raw);
            let _ = termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw);
        }
        RawMode { saved }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(orig) = &self.saved {
            let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, orig);
        }
    }
}

/// Copies stdin → master (in a detached thread: a blocked read on stdin
/// cannot be interrupted, and the process exits soon after anyway) and
/// master → stdout until the pty closes. Returns the output thread.
pub fn relay(master: &OwnedFd, forward_stdin: bool) -> std::thread::JoinHandle<()> {
    if forward_stdin {
        let mut to_master = File::from(master.try_clone().expect("dup pty master"));
        std::thread::spawn(move || {
            let mut stdin = std::io::stdin();
            let mut buf = [0u8; 4096];
            loop {
                match stdin.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if to_master.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                }
            }
        });
    }
    let mut from_master = File::from(master.try_clone().expect("dup pty master"));
    std::thread::spawn(move || {
        let mut stdout = std::io::stdout();
        let mut buf = [0u8; 4096];
        // EIO once every slave descriptor is closed: the container is gone.
        while let Ok(n) = from_master.read(&mut buf) {
            if n == 0 || stdout.write_all(&buf[..n]).is_err() {
                break;
            }
            let _ = stdout.flush();
        }
    })
}

/// Forwards terminating signals to `pid` and, with a pty, window-size
/// changes to `master`. Runs until the process exits.
pub fn forward_signals(pid: i32, master: Option<i32>) {
    let Ok(mut signals) =
        Signals::new([SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH])
    else {
        return;
    };
    std::thread::spawn(move || {
        for sig in signals.forever() {
            if sig == SIGWINCH {
                if let Some(m) = master {
                    copy_winsize(std::io::stdin().as_raw_fd(), m);
                }
                continue;
            }
            if let Ok(s) = Signal::try_from(sig) {
                let _ = kill(Pid::from_raw(pid), s);
            }
        }
    });
}
