//! Transmit batching decisions: how the datagrams prepared in one wake-up of a pseudowire's
//! transmit loop leave through the tunnel socket.
//!
//! The transmit loop drains its TAP (up to a bound) on every wake-up and encapsulates every
//! frame — or every segment of a TCP super-frame ([`crate::gso::TcpSegmenter`]) — into
//! consecutive bytes of one buffer, in order. [`plan`] then cuts that list of datagrams
//! into runs, keeping their order (each carries its own L2TP Ns):
//!
//! * [`TxRun::Segmented`]: two or more datagrams that sit back to back in the buffer, all
//!   exactly as long as the first except the last, which may be shorter — one UDP GSO send
//!   (`UDP_SEGMENT`), for which the kernel cuts the buffer into exactly these datagrams.
//!   Only when the socket allows GSO ([`TxLimits::gso`]; the kernel refuses it without UDP
//!   checksums) and within the kernel's limits on segment count and bytes per send.
//! * [`TxRun::Batch`]: everything else, grouped into `sendmmsg` calls of at most
//!   [`TxLimits::max_batch`] datagrams.
//!
//! Either way the datagrams on the wire are the ones that one send per datagram would have
//! produced, in the same order. Pure: it only looks at `(start, end)` ranges.

/// The kernel's limit on segments per UDP GSO send (`UDP_MAX_SEGMENTS`).
pub const UDP_MAX_SEGMENTS: usize = 64;

/// What the socket allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxLimits {
    /// UDP GSO is possible on this socket.
    pub gso: bool,
    /// Largest UDP payload of one GSO send (65507 for IPv4).
    pub max_gso_bytes: usize,
    /// Largest number of segments in one GSO send.
    pub max_segments: usize,
    /// Largest number of datagrams in one `sendmmsg`.
    pub max_batch: usize,
}

/// One send of consecutive datagrams `first .. first + count` (indices into the ranges
/// given to [`plan`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxRun {
    /// One UDP GSO send of the bytes from the start of datagram `first` to the end of the
    /// last one, cut into `segment`-byte datagrams.
    Segmented {
        /// First datagram.
        first: usize,
        /// Number of datagrams (at least 2).
        count: usize,
        /// Length of every datagram but the last.
        segment: usize,
    },
    /// One `sendmmsg` of these datagrams.
    Batch {
        /// First datagram.
        first: usize,
        /// Number of datagrams (at least 1).
        count: usize,
    },
}

/// How long a GSO run starting at `ranges[i]` can be (1 when it cannot be one).
fn gso_run_len(ranges: &[(usize, usize)], i: usize, limits: &TxLimits) -> usize {
    let seg = ranges[i].1.saturating_sub(ranges[i].0);
    if seg == 0 || seg > usize::from(u16::MAX) {
        return 1;
    }
    let max_count = limits.max_segments.min(UDP_MAX_SEGMENTS);
    let mut total = seg;
    let mut j = i + 1;
    while j < ranges.len() && j - i < max_count {
        let (prev, cur) = (ranges[j - 1], ranges[j]);
        let len = cur.1.saturating_sub(cur.0);
        if cur.0 != prev.1 || len == 0 || len > seg || total + len > limits.max_gso_bytes {
            break;
        }
        total += len;
        j += 1;
        if len < seg {
            // A shorter datagram can only be the last of a run.
            break;
        }
    }
    j - i
}

/// Cut `ranges` (datagram `(start, end)` byte ranges in one buffer, in send order) into
/// sends; `out` is cleared first. Every datagram is in exactly one run, runs in order.
pub fn plan(ranges: &[(usize, usize)], limits: &TxLimits, out: &mut Vec<TxRun>) {
    out.clear();
    let max_batch = limits.max_batch.max(1);
    let mut batch: Option<(usize, usize)> = None;
    let mut i = 0;
    while i < ranges.len() {
        let run = if limits.gso {
            gso_run_len(ranges, i, limits)
        } else {
            1
        };
        if run >= 2 {
            if let Some((first, count)) = batch.take() {
                out.push(TxRun::Batch { first, count });
            }
            out.push(TxRun::Segmented {
                first: i,
                count: run,
                segment: ranges[i].1 - ranges[i].0,
            });
            i += run;
            continue;
        }
        batch = match batch {
            Some((first, count)) if count < max_batch => Some((first, count + 1)),
            Some((first, count)) => {
                out.push(TxRun::Batch { first, count });
                Some((i, 1))
            }
            None => Some((i, 1)),
        };
        i += 1;
    }
    if let Some((first, count)) = batch {
        out.push(TxRun::Batch { first, count });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GSO: TxLimits = TxLimits {
        gso: true,
        max_gso_bytes: 65507,
        max_segments: 64,
        max_batch: 64,
    };
    const NO_GSO: TxLimits = TxLimits { gso: false, ..GSO };

    /// Back-to-back datagrams of these lengths.
    fn packed(lens: &[usize]) -> Vec<(usize, usize)> {
        let mut at = 0;
        lens.iter()
            .map(|l| {
                let r = (at, at + l);
                at += l;
                r
            })
            .collect()
    }

    fn run(limits: &TxLimits, ranges: &[(usize, usize)]) -> Vec<TxRun> {
        let mut out = vec![TxRun::Batch {
            first: 99,
            count: 1,
        }];
        plan(ranges, limits, &mut out);
        // Every datagram exactly once, in order.
        let mut next = 0;
        for r in &out {
            let (first, count) = match *r {
                TxRun::Segmented { first, count, .. } => (first, count),
                TxRun::Batch { first, count } => (first, count),
            };
            assert_eq!(first, next, "{out:?}");
            assert!(count >= 1);
            next += count;
        }
        assert_eq!(next, ranges.len(), "{out:?}");
        out
    }

    #[test]
    fn nothing_to_send() {
        assert!(run(&GSO, &[]).is_empty());
    }

    #[test]
    fn equal_small_frames_form_one_gso_send() {
        let r = packed(&[82; 10]);
        assert_eq!(
            run(&GSO, &r),
            [TxRun::Segmented {
                first: 0,
                count: 10,
                segment: 82
            }]
        );
    }

    #[test]
    fn without_gso_everything_is_sendmmsg_in_bounded_batches() {
        let r = packed(&[82; 150]);
        let lim = TxLimits {
            max_batch: 64,
            ..NO_GSO
        };
        assert_eq!(
            run(&lim, &r),
            [
                TxRun::Batch {
                    first: 0,
                    count: 64
                },
                TxRun::Batch {
                    first: 64,
                    count: 64
                },
                TxRun::Batch {
                    first: 128,
                    count: 22
                },
            ]
        );
    }

    #[test]
    fn a_shorter_datagram_ends_a_run_and_a_longer_one_starts_another() {
        // Segments of one super-frame (last one short), then a small frame, then a second
        // super-frame's segments.
        let r = packed(&[1460, 1460, 1460, 700, 90, 1460, 1460]);
        assert_eq!(
            run(&GSO, &r),
            [
                TxRun::Segmented {
                    first: 0,
                    count: 4,
                    segment: 1460
                },
                TxRun::Batch { first: 4, count: 1 },
                TxRun::Segmented {
                    first: 5,
                    count: 2,
                    segment: 1460
                },
            ]
        );
    }

    #[test]
    fn a_single_datagram_is_not_a_gso_send() {
        let r = packed(&[100, 200, 300]);
        assert_eq!(run(&GSO, &r), [TxRun::Batch { first: 0, count: 3 }]);
    }

    #[test]
    fn gaps_between_datagrams_break_runs() {
        let r = [(0, 100), (100, 200), (300, 400), (400, 500)];
        assert_eq!(
            run(&GSO, &r),
            [
                TxRun::Segmented {
                    first: 0,
                    count: 2,
                    segment: 100
                },
                TxRun::Segmented {
                    first: 2,
                    count: 2,
                    segment: 100
                },
            ]
        );
    }

    #[test]
    fn kernel_limits_on_segments_and_bytes() {
        // 100 equal datagrams: at most 64 segments per send.
        let r = packed(&[100; 100]);
        assert_eq!(
            run(&GSO, &r),
            [
                TxRun::Segmented {
                    first: 0,
                    count: 64,
                    segment: 100
                },
                TxRun::Segmented {
                    first: 64,
                    count: 36,
                    segment: 100
                },
            ]
        );
        // 1500-byte datagrams: 65507 / 1500 = 43 per send.
        let r = packed(&[1500; 50]);
        assert_eq!(
            run(&GSO, &r),
            [
                TxRun::Segmented {
                    first: 0,
                    count: 43,
                    segment: 1500
                },
                TxRun::Segmented {
                    first: 43,
                    count: 7,
                    segment: 1500
                },
            ]
        );
        // A smaller per-socket segment limit is honoured too.
        let lim = TxLimits {
            max_segments: 3,
            ..GSO
        };
        let out = run(&lim, &packed(&[10; 7]));
        assert_eq!(out.len(), 3, "{out:?}");
    }

    #[test]
    fn datagrams_too_long_for_a_segment_size_are_sent_one_by_one() {
        let r = packed(&[70_000, 70_000]);
        assert_eq!(run(&GSO, &r), [TxRun::Batch { first: 0, count: 2 }]);
        // Empty or reversed ranges never panic and never become a GSO run.
        let r = [(0, 0), (0, 0), (10, 5)];
        assert_eq!(run(&GSO, &r), [TxRun::Batch { first: 0, count: 3 }]);
    }

    #[test]
    fn batch_limit_zero_still_sends_everything() {
        let lim = TxLimits {
            max_batch: 0,
            ..NO_GSO
        };
        assert_eq!(run(&lim, &packed(&[5; 3])).len(), 3);
    }
}
