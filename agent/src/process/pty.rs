//! Pseudo-terminals for processes started with `pty`: the pair, and the
//! master side the agent keeps (non-blocking, on tokio's reactor) to read
//! the terminal's output, write its input and set its size.

use std::io;
use std::os::fd::OwnedFd;

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use rustix::pty::OpenptFlags;
use rustix::termios::{SpecialCodeIndex, Winsize};
use sandboxer_agent_proto::PtySize;
use tokio::io::unix::AsyncFd;

/// The end-of-file character of a terminal whose settings cannot be read.
const DEFAULT_EOF: u8 = 0x04;

/// A new terminal of `size`: (master, slave). Both close on exec; the slave
/// becomes a child's stdio through dup2, which clears that.
pub fn open(size: PtySize) -> io::Result<(OwnedFd, OwnedFd)> {
    let master =
        rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)?;
    rustix::pty::grantpt(&master)?;
    rustix::pty::unlockpt(&master)?;
    let name = rustix::pty::ptsname(&master, Vec::new())?;
    let slave = rustix::fs::open(
        name.as_c_str(),
        OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    rustix::termios::tcsetwinsize(&slave, winsize(size))?;
    Ok((master, slave))
}

fn winsize(size: PtySize) -> Winsize {
    Winsize {
        ws_row: size.rows,
        ws_col: size.cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
}

/// The master side of a process's terminal.
pub struct Master {
    fd: AsyncFd<OwnedFd>,
}

impl Master {
    /// Must run within the runtime (it registers with the reactor).
    #[allow(unsafe_code)]
    pub fn new(fd: OwnedFd) -> io::Result<Self> {
        let flags = rustix::fs::fcntl_getfl(&fd)?;
        rustix::fs::fcntl_setfl(&fd, flags | OFlags::NONBLOCK)?;
        // SAFETY: the AsyncFd owns the OwnedFd, so the descriptor stays open
        // and the same for the AsyncFd's whole life; nothing else closes it.
        let fd = unsafe { AsyncFd::register(fd) }.map_err(io::Error::from)?;
        Ok(Self { fd })
    }

    /// The terminal's output; 0 once no process holds the slave any more
    /// (Linux answers EIO then).
    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut ready = self.fd.readable().await?;
            let hung_up = ready.ready().is_read_closed();
            match ready.try_io(|fd| Ok(rustix::io::read(fd.get_ref(), &mut *buf)?)) {
                Ok(Err(e)) if e.raw_os_error() == Some(Errno::IO.raw_os_error()) => return Ok(0),
                Ok(read) => return read,
                // Hung up, yet no EIO: the slave was opened again since.
                // Waiting would spin as in `write`; the output ends here.
                Err(_would_block) if hung_up => return Ok(0),
                Err(_would_block) => {}
            }
        }
    }

    /// Some of `data` to the terminal's input, once it has room. Fails once
    /// no process holds the slave any more.
    ///
    /// The hang-up must end the wait: while the master is open the kernel
    /// answers a full input with EAGAIN, never EIO (the master counts as a
    /// holder of the slave), and tokio keeps a hang-up as readiness for
    /// good. Waiting again would return at once, forever, and starve the
    /// agent's one thread: no reaping, no `Kill`, no answer to anything.
    pub async fn write(&self, data: &[u8]) -> io::Result<usize> {
        loop {
            let mut ready = self.fd.writable().await?;
            let hung_up = ready.ready().is_write_closed();
            match ready.try_io(|fd| Ok(rustix::io::write(fd.get_ref(), data)?)) {
                Ok(written) => return written,
                Err(_would_block) if hung_up => {
                    return Err(io::Error::new(
                        io::ErrorKind::BrokenPipe,
                        "no process holds the terminal",
                    ));
                }
                Err(_would_block) => {}
            }
        }
    }

    /// The kernel tells the terminal's foreground group (SIGWINCH).
    pub fn resize(&self, size: PtySize) -> io::Result<()> {
        Ok(rustix::termios::tcsetwinsize(
            self.fd.get_ref(),
            winsize(size),
        )?)
    }

    /// What the terminal takes as end of file (^D unless changed).
    pub fn eof_char(&self) -> u8 {
        rustix::termios::tcgetattr(self.fd.get_ref())
            .map_or(DEFAULT_EOF, |t| t.special_codes[SpecialCodeIndex::VEOF])
    }
}
