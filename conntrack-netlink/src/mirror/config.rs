//! How a [`Mirror`](super::Mirror) runs: [`MirrorConfig`] and the
//! schedule of resyncs without loss, [`ResyncPeriod`].

use crate::event::RcvBuf;
use crate::netns::Netns;
use std::time::Duration;

/// How to run a [`Mirror`](super::Mirror).
///
/// ```
/// use conntrack_netlink::event::RcvBuf;
/// use conntrack_netlink::mirror::MirrorConfig;
/// use conntrack_netlink::Netns;
/// let cfg = MirrorConfig::new(Netns::named("blue")).rcvbuf(RcvBuf::Bytes(64 << 20));
/// assert!(cfg.resyncs_on_loss());
/// ```
#[derive(Debug, Clone)]
pub struct MirrorConfig {
    pub(super) netns: Netns,
    pub(super) rcvbuf: RcvBuf,
    pub(super) resync_on_loss: bool,
    pub(super) max_batch: usize,
    pub(super) resync_every: ResyncPeriod,
}

/// When a [`Mirror`](super::Mirror) resyncs without a loss; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResyncPeriod {
    /// Chosen from `nf_conntrack_events` when the mirror opens, backing
    /// off while periodic resyncs find nothing (the default).
    Auto,
    /// Never (only on loss and on request).
    Never,
    /// At this fixed period.
    Every(Duration),
}

impl ResyncPeriod {
    /// The automatic period with `nf_conntrack_events=2`.
    pub const AUTO_BASE: Duration = Duration::from_secs(60);
    /// The automatic period with `nf_conntrack_events=0` (or unreadable).
    pub const AUTO_NO_EVENTS: Duration = Duration::from_secs(10);
    /// The longest automatic period after back-off.
    pub const AUTO_MAX: Duration = Duration::from_secs(600);

    /// The first period for a namespace whose `nf_conntrack_events` reads
    /// `events` (`None`: could not be read).
    ///
    /// ```
    /// use conntrack_netlink::mirror::ResyncPeriod;
    /// use std::time::Duration;
    /// assert_eq!(ResyncPeriod::Auto.initial(Some(1)), None);
    /// assert_eq!(ResyncPeriod::Auto.initial(Some(2)), Some(ResyncPeriod::AUTO_BASE));
    /// assert_eq!(ResyncPeriod::Auto.initial(Some(0)), Some(ResyncPeriod::AUTO_NO_EVENTS));
    /// let fixed = ResyncPeriod::Every(Duration::from_secs(5));
    /// assert_eq!(fixed.initial(Some(1)), Some(Duration::from_secs(5)));
    /// ```
    pub fn initial(self, events: Option<u8>) -> Option<Duration> {
        match self {
            ResyncPeriod::Never => None,
            ResyncPeriod::Every(d) => Some(d),
            ResyncPeriod::Auto => match events {
                Some(1) => None,
                Some(2) => Some(Self::AUTO_BASE),
                _ => Some(Self::AUTO_NO_EVENTS),
            },
        }
    }

    /// The period after a periodic resync that found `differed` entries
    /// different, given the current period: automatic periods double
    /// while resyncs find nothing and go back to the first period when
    /// they find something; fixed periods stay.
    ///
    /// ```
    /// use conntrack_netlink::mirror::ResyncPeriod;
    /// use std::time::Duration;
    /// let base = ResyncPeriod::AUTO_BASE;
    /// assert_eq!(ResyncPeriod::Auto.next(base, Some(2), 0), 2 * base);
    /// assert_eq!(ResyncPeriod::Auto.next(ResyncPeriod::AUTO_MAX, Some(2), 0), ResyncPeriod::AUTO_MAX);
    /// assert_eq!(ResyncPeriod::Auto.next(4 * base, Some(2), 3), base);
    /// ```
    pub fn next(self, current: Duration, events: Option<u8>, differed: u64) -> Duration {
        match self {
            ResyncPeriod::Auto if differed == 0 => (current * 2).min(Self::AUTO_MAX),
            ResyncPeriod::Auto => self.initial(events).unwrap_or(current),
            _ => current,
        }
    }
}

impl MirrorConfig {
    /// Mirror the table of `netns`, with an automatic receive buffer
    /// ([`RcvBuf::Auto`]) and resync on loss.
    pub fn new(netns: Netns) -> Self {
        MirrorConfig {
            netns,
            rcvbuf: RcvBuf::Auto,
            resync_on_loss: true,
            max_batch: 1 << 16,
            resync_every: ResyncPeriod::Auto,
        }
    }

    /// Resync at this fixed period even without loss (`None`: never), to
    /// remove entries that go away without a DESTROY event (see the
    /// module documentation on `nf_conntrack_events`). [`Mirror::poll`](super::Mirror::poll)
    /// runs it when due. The default is [`ResyncPeriod::Auto`].
    pub fn resync_every(mut self, period: Option<Duration>) -> Self {
        self.resync_every = match period.filter(|p| !p.is_zero()) {
            Some(d) => ResyncPeriod::Every(d),
            None => ResyncPeriod::Never,
        };
        self
    }

    /// When to resync without a loss.
    pub fn resync_period(mut self, period: ResyncPeriod) -> Self {
        self.resync_every = period;
        self
    }

    /// The event socket's receive buffer.
    pub fn rcvbuf(mut self, rcvbuf: RcvBuf) -> Self {
        self.rcvbuf = rcvbuf;
        self
    }

    /// Whether [`Mirror::poll`](super::Mirror::poll) resyncs by itself when events were lost
    /// (default). Without it, the loss is only reported
    /// ([`Poll::lost`](super::Poll::lost)) and [`Mirror::is_stale`](super::Mirror::is_stale) stays true until
    /// [`Mirror::resync`](super::Mirror::resync).
    pub fn resync_on_loss(mut self, yes: bool) -> Self {
        self.resync_on_loss = yes;
        self
    }

    /// Whether the mirror resyncs by itself on loss.
    pub fn resyncs_on_loss(&self) -> bool {
        self.resync_on_loss
    }

    /// At most this many events per [`Mirror::poll`](super::Mirror::poll) (default 65536), so
    /// that a poll returns under a flood.
    pub fn max_batch(mut self, n: usize) -> Self {
        self.max_batch = n.max(1);
        self
    }
}
