//! A destination's delivery state: its cursor and the batch in flight, kept in a two-slot
//! checkpoint file (`hydrant_wal::CheckpointFile`) through the WAL crate's storage seam.
//!
//! ```text
//! Format (payload of a checkpoint slot, little-endian):
//! { version u8 = 2 | flags u8 (bit 0: intent present) | reserved [u8; 6] | cursor u64 |
//!   intent_first u64 | intent_end u64 | intent_oldest_arrival_ms u64 |
//!   intent_first_attempt_ms u64 | intent_attempts u32 | intent_stream_version u32 |
//!   sink_end u64 | sink_version u32 | reserved u32 }
//! ```
//! `intent_stream_version` is the stream's `VersionId` the batch was first sent under (it is
//! part of the object key); 0 (a state written before it was recorded) means "the current one".
//! `sink_end` is the position a sink that keeps its own (PostgreSQL's `hydrant_offsets`)
//! confirmed last, under the stream version `sink_version`: at start, a destination holding
//! less than that lost commits (see [`crate::delivery`]). 0: none confirmed.
//!
//! Version 3 (dynamic partitioning) puts the number of held rounds in the last `u32` and
//! follows with that many `{ end u64 | cut_ms u64 | oldest_arrival_ms u64 | stream_version u32
//! | reserved u32 }`: the rounds since the partition buffers were last empty, oldest first (the
//! first starts at `cursor`, each next one where the one before ended; the intent, if any, starts
//! where the last ends). See [`crate::delivery`]'s "Dynamic partitioning".
//!
//! Versions 1 (56 bytes, without the last three fields; `sink_end` 0) and 2 (72 bytes, no held
//! rounds) are still read. The slot's own header carries the magic, the checkpoint format
//! version and a CRC32.

use hydrant_wal::Lsn;

const VERSION: u8 = 3;
const LEN: usize = 72;
/// Bytes of one held round.
const HELD_LEN: usize = 32;
/// The most held rounds a checkpoint keeps (the partition buffers are all flushed at the round
/// that would pass it): 64 × 32 bytes fit a checkpoint slot with room to spare.
pub const HELD_ROUNDS_MAX: usize = 64;
/// Version 1 of the payload: the same without `sink_end` and `sink_version`.
const LEN_V1: usize = 56;

/// A batch recorded before its first attempt, so that after a crash it is sent again with the
/// same boundaries and identity (and so overwrites whatever the first attempt wrote).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Intent {
    /// First LSN of the batch.
    pub first: Lsn,
    /// One past its last LSN.
    pub end: Lsn,
    /// Arrival time of its oldest record (names its object), ms since the epoch.
    pub oldest_arrival_ms: u64,
    /// When its first attempt started: the retry window runs from here.
    pub first_attempt_ms: u64,
    /// Attempts made so far (for the error output's `attemptsMade`).
    pub attempts: u32,
    /// The stream's `VersionId` the batch was first sent under: a resend after an
    /// UpdateDestination keeps it, so it names the same object. 0: unknown (use the current).
    pub stream_version: u32,
}

/// A round of a partitioned destination that is processed but whose records may still be held
/// in partition buffers (some of them not yet in any object).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Held {
    /// One past its last LSN (it starts where the round before it ended, or at the cursor).
    pub end: Lsn,
    /// When it was cut: the instant its interval flushes were decided at.
    pub cut_ms: u64,
    /// Arrival time of its oldest record.
    pub oldest_arrival_ms: u64,
    /// The stream's `VersionId` it was processed under.
    pub stream_version: u32,
}

/// What the checkpoint holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryState {
    /// Every record below this LSN is delivered (or in the error output).
    pub cursor: Lsn,
    /// The batch in flight, if any; it starts at `cursor`, or where the last held round ends.
    /// (A round of a partitioned destination may be empty: `end == first`, cut only to flush
    /// partitions that are due.)
    pub intent: Option<Intent>,
    /// Dynamic partitioning: the rounds since the partition buffers were last empty (at most
    /// [`HELD_ROUNDS_MAX`]); always empty for other destinations.
    pub held: Vec<Held>,
    /// The end LSN the destination last confirmed holding, for sinks that keep their own
    /// position ([`hydrant_sinks::Sink::committed_end`]); 0 when none was confirmed. Never above
    /// `cursor` (batches given up or emptied by a transform move the cursor, not this).
    pub sink_end: Lsn,
    /// The stream's `VersionId` under which `sink_end` was confirmed: after a destination
    /// change, the destination may be another database, so its position is not compared.
    pub sink_version: u32,
}

impl DeliveryState {
    /// Where the next round starts: the end of the last held round, or the cursor.
    #[must_use]
    pub fn read_from(&self) -> Lsn {
        self.held.last().map_or(self.cursor, |h| h.end)
    }

    /// Whether the intent, the held rounds and the cursor fit together.
    fn consistent(&self) -> bool {
        let mut at = self.cursor;
        for h in &self.held {
            if h.end < at {
                return false;
            }
            at = h.end;
        }
        self.held.len() <= HELD_ROUNDS_MAX
            && self.sink_end <= self.cursor
            && self
                .intent
                .is_none_or(|i| i.first == at && i.end >= i.first)
    }

    /// Encodes the state as a checkpoint payload.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        debug_assert!(self.consistent(), "inconsistent delivery state {self:?}");
        let mut b = vec![0u8; LEN + HELD_LEN * self.held.len()];
        b[0] = VERSION;
        b[1] = u8::from(self.intent.is_some());
        b[8..16].copy_from_slice(&self.cursor.0.to_le_bytes());
        if let Some(i) = self.intent {
            b[16..24].copy_from_slice(&i.first.0.to_le_bytes());
            b[24..32].copy_from_slice(&i.end.0.to_le_bytes());
            b[32..40].copy_from_slice(&i.oldest_arrival_ms.to_le_bytes());
            b[40..48].copy_from_slice(&i.first_attempt_ms.to_le_bytes());
            b[48..52].copy_from_slice(&i.attempts.to_le_bytes());
            b[52..56].copy_from_slice(&i.stream_version.to_le_bytes());
        }
        b[56..64].copy_from_slice(&self.sink_end.0.to_le_bytes());
        b[64..68].copy_from_slice(&self.sink_version.to_le_bytes());
        b[68..72].copy_from_slice(&(self.held.len() as u32).to_le_bytes());
        for (h, at) in self.held.iter().zip((LEN..).step_by(HELD_LEN)) {
            b[at..at + 8].copy_from_slice(&h.end.0.to_le_bytes());
            b[at + 8..at + 16].copy_from_slice(&h.cut_ms.to_le_bytes());
            b[at + 16..at + 24].copy_from_slice(&h.oldest_arrival_ms.to_le_bytes());
            b[at + 24..at + 28].copy_from_slice(&h.stream_version.to_le_bytes());
        }
        b
    }

    /// Decodes a checkpoint payload; `None` when it is not one this build writes.
    #[must_use]
    pub fn decode(b: &[u8]) -> Option<DeliveryState> {
        let held_count = match (b.first(), b.len()) {
            (Some(&VERSION), n) if n >= LEN => {
                let count = u32::from_le_bytes([b[68], b[69], b[70], b[71]]) as usize;
                if count > HELD_ROUNDS_MAX || n != LEN + HELD_LEN * count {
                    return None;
                }
                count
            }
            (Some(2), LEN) | (Some(1), LEN_V1) => 0,
            _ => return None,
        };
        let u64_at = |at: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[at..at + 8]);
            u64::from_le_bytes(w)
        };
        let intent = (b[1] & 1 == 1).then(|| Intent {
            first: Lsn(u64_at(16)),
            end: Lsn(u64_at(24)),
            oldest_arrival_ms: u64_at(32),
            first_attempt_ms: u64_at(40),
            attempts: u32::from_le_bytes([b[48], b[49], b[50], b[51]]),
            stream_version: u32::from_le_bytes([b[52], b[53], b[54], b[55]]),
        });
        let (sink_end, sink_version) = if b[0] != 1 {
            (
                Lsn(u64_at(56)),
                u32::from_le_bytes([b[64], b[65], b[66], b[67]]),
            )
        } else {
            (Lsn(0), 0)
        };
        let held = (0..held_count)
            .map(|n| {
                let at = LEN + n * HELD_LEN;
                Held {
                    end: Lsn(u64_at(at)),
                    cut_ms: u64_at(at + 8),
                    oldest_arrival_ms: u64_at(at + 16),
                    stream_version: u32::from_le_bytes([
                        b[at + 24],
                        b[at + 25],
                        b[at + 26],
                        b[at + 27],
                    ]),
                }
            })
            .collect();
        let state = DeliveryState {
            cursor: Lsn(u64_at(8)),
            intent,
            held,
            sink_end,
            sink_version,
        };
        state.consistent().then_some(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A state with an intent pending at LSN 10..20 and the destination at `sink_end`.
    fn pending(sink_end: Lsn) -> DeliveryState {
        DeliveryState {
            cursor: Lsn(10),
            intent: Some(Intent {
                first: Lsn(10),
                end: Lsn(20),
                oldest_arrival_ms: 5,
                first_attempt_ms: 6,
                attempts: 2,
                stream_version: 3,
            }),
            held: Vec::new(),
            sink_end,
            sink_version: 3,
        }
    }

    #[test]
    fn round_trips_and_rejects_inconsistent_state() {
        let s = pending(Lsn(9));
        assert_eq!(DeliveryState::decode(&s.encode()), Some(s.clone()));
        let idle = DeliveryState {
            cursor: Lsn(7),
            intent: None,
            held: Vec::new(),
            sink_end: Lsn(0),
            sink_version: 0,
        };
        assert_eq!(DeliveryState::decode(&idle.encode()), Some(idle));
        // The cursor moved past the intent's first LSN.
        let mut bad = s.encode();
        bad[8..16].copy_from_slice(&11u64.to_le_bytes());
        assert_eq!(DeliveryState::decode(&bad), None);
        assert_eq!(DeliveryState::decode(&[3u8; LEN]), None);
        assert_eq!(DeliveryState::decode(&[2u8; LEN_V1]), None);
    }

    #[test]
    fn reads_version_1_without_a_sink_position() {
        let s = pending(Lsn(10));
        let mut v1 = s.encode();
        v1.truncate(LEN_V1);
        v1[0] = 1;
        let read = DeliveryState::decode(&v1);
        assert_eq!(
            read,
            Some(DeliveryState {
                sink_end: Lsn(0),
                sink_version: 0,
                ..s
            })
        );
    }

    #[test]
    fn held_rounds_round_trip_and_must_chain() {
        let held = |end: u64| Held {
            end: Lsn(end),
            cut_ms: 100 + end,
            oldest_arrival_ms: 50 + end,
            stream_version: 2,
        };
        let s = DeliveryState {
            cursor: Lsn(10),
            intent: Some(Intent {
                first: Lsn(30),
                end: Lsn(30),
                oldest_arrival_ms: 5,
                first_attempt_ms: 6,
                attempts: 0,
                stream_version: 2,
            }),
            held: vec![held(20), held(20), held(30)],
            sink_end: Lsn(0),
            sink_version: 2,
        };
        let bytes = s.encode();
        assert_eq!(bytes.len(), LEN + 3 * HELD_LEN);
        assert_eq!(DeliveryState::decode(&bytes), Some(s.clone()));
        // An intent not at the last held round's end, a round ending before the one before,
        // a count that disagrees with the length: refused.
        let mut bad = bytes.clone();
        bad[16..24].copy_from_slice(&20u64.to_le_bytes());
        assert_eq!(DeliveryState::decode(&bad), None);
        let mut bad = bytes.clone();
        bad[LEN + HELD_LEN..LEN + HELD_LEN + 8].copy_from_slice(&5u64.to_le_bytes());
        assert_eq!(DeliveryState::decode(&bad), None);
        let mut bad = bytes;
        bad[68] = 2;
        assert_eq!(DeliveryState::decode(&bad), None);
        const {
            assert!(
                LEN + HELD_LEN * HELD_ROUNDS_MAX <= hydrant_wal::checkpoint::CHECKPOINT_PAYLOAD_MAX
            )
        };
    }
}
