//! What both roles share: chunk reassembly and the outbox, the MTU, the clock and timeouts, and
//! the events. Each role keeps only its own states and what it does with a whole frame.

use super::{Event, Instant, Outbox, Timeouts};
use crate::chunk::Reassembler;
use crate::{BleError, MAX_FRAME, chunk_len};
use core::time::Duration;

pub(super) struct Core {
    pub(super) inbox: Reassembler<MAX_FRAME>,
    pub(super) outbox: Outbox,
    pub(super) mtu: u16,
    /// The largest ATT MTU the peer may send at (the MTU, unless the link knows better).
    rx_mtu: u16,
    pub(super) timeouts: Timeouts,
    /// When State = start was seen (`None` before).
    started: Option<Instant>,
    /// When the current wait began, and how long it may last.
    waiting_since: Instant,
    wait_limit: Duration,
    /// A `RequestShown` not yet polled.
    shown: bool,
    /// The final event, once there is one, and whether it was polled.
    end: Option<Event>,
    end_polled: bool,
    /// Whether the one chunk after a completed exchange was reported (later input is `Closed`).
    late: bool,
}

impl Core {
    pub(super) const fn new() -> Self {
        Core {
            inbox: Reassembler::new(),
            outbox: Outbox::new(),
            mtu: crate::MIN_MTU,
            rx_mtu: crate::MIN_MTU,
            timeouts: Timeouts::SPEC,
            started: None,
            waiting_since: Duration::ZERO,
            wait_limit: Duration::ZERO,
            shown: false,
            end: None,
            end_polled: false,
            late: false,
        }
    }

    pub(super) fn set_mtu(&mut self, mtu: u16) -> Result<(), BleError> {
        chunk_len(mtu)?;
        self.mtu = mtu;
        self.rx_mtu = mtu;
        Ok(())
    }

    pub(super) fn set_receive_mtu(&mut self, mtu: u16) -> Result<(), BleError> {
        chunk_len(mtu)?;
        self.rx_mtu = mtu;
        Ok(())
    }

    /// Arms the session clock. Fails when the session was started already.
    pub(super) fn start(&mut self, now: Instant) -> Result<(), BleError> {
        if self.started.is_some() || self.end.is_some() {
            return Err(BleError::Unexpected);
        }
        self.started = Some(now);
        self.wait(now, self.timeouts.idle);
        Ok(())
    }

    pub(super) fn started(&self) -> bool {
        self.started.is_some()
    }

    /// A new wait begins at `now` and may last `limit`.
    pub(super) fn wait(&mut self, now: Instant, limit: Duration) {
        self.waiting_since = now;
        self.wait_limit = limit;
    }

    pub(super) fn is_over(&self) -> bool {
        self.end.is_some()
    }

    pub(super) fn is_finished(&self) -> bool {
        self.end.is_some() && !self.outbox.pending
    }

    /// The instant the session next needs its timeout handled: the
    /// earlier of the step's and the session's limit. `None` before start and after the end.
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        let started = self.started?;
        if self.end.is_some() {
            return None;
        }
        let step = self.waiting_since.saturating_add(self.wait_limit);
        Some(step.min(started.saturating_add(self.timeouts.session)))
    }

    /// Whether a limit passed at `now`; the caller then ends the session.
    pub(super) fn expired(&self, now: Instant) -> bool {
        self.poll_timeout().is_some_and(|deadline| now >= deadline)
    }

    pub(super) fn show(&mut self) {
        self.shown = true;
    }

    /// Ends the session with `event` (the first final event stands).
    pub(super) fn finish(&mut self, event: Event) {
        if self.end.is_none() {
            self.end = Some(event);
        }
    }

    /// Ends the session with `e` and drops what was queued, unless it had ended already:
    /// then the outcome stands and `e` is only returned.
    pub(super) fn fail(&mut self, e: BleError) -> BleError {
        if self.end.is_none() {
            self.outbox.pending = false;
            self.finish(Event::Failed(e));
        }
        e
    }

    pub(super) fn poll_event(&mut self) -> Option<Event> {
        if self.shown {
            self.shown = false;
            return Some(Event::RequestShown);
        }
        match self.end {
            Some(e) if !self.end_polled => {
                self.end_polled = true;
                Some(e)
            }
            _ => None,
        }
    }

    /// The receive prologue of both roles: refuses input after the end, while a frame of
    /// ours is still being sent, and chunks over MTU − 3 bytes (§14.3); reassembles. Returns
    /// the length of the whole frame copied into `frame`, or `None` while more chunks are due.
    pub(super) fn take_frame(
        &mut self,
        chunk: &[u8],
        now: Instant,
        frame: &mut [u8; MAX_FRAME],
    ) -> Result<Option<usize>, BleError> {
        match self.end {
            Some(Event::Failed(_) | Event::TimedOut) => return Err(BleError::Closed),
            Some(_) if self.late => return Err(BleError::Closed),
            Some(_) => {
                self.late = true;
                return Err(BleError::ChunkAfterLast);
            }
            None => {}
        }
        if !self.started() || self.outbox.pending {
            return Err(self.fail(BleError::Unexpected));
        }
        if chunk.len() > chunk_len(self.rx_mtu).unwrap_or(0) {
            return Err(self.fail(BleError::BadChunk));
        }
        match self.inbox.push(chunk) {
            Ok(None) => {
                // Part of a frame: the next chunk is due within the idle limit.
                self.wait(now, self.timeouts.idle);
                Ok(None)
            }
            Ok(Some(f)) => {
                let dst = frame.get_mut(..f.len()).ok_or(BleError::TooLarge)?;
                dst.copy_from_slice(f);
                Ok(Some(f.len()))
            }
            Err(e) => Err(self.fail(e)),
        }
    }
}
