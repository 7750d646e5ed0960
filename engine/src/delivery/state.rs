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
//! Version 1 (56 bytes, without the last three fields) is still read, with `sink_end` 0.
//! The slot's own header carries the magic, the checkpoint format version and a CRC32.

use hydrant_wal::Lsn;

const VERSION: u8 = 2;
const LEN: usize = 72;
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

/// What the checkpoint holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeliveryState {
    /// Every record below this LSN is delivered (or in the error output).
    pub cursor: Lsn,
    /// The batch in flight, if any; it starts at `cursor`.
    pub intent: Option<Intent>,
    /// The end LSN the destination last confirmed holding, for sinks that keep their own
    /// position ([`hydrant_sinks::Sink::committed_end`]); 0 when none was confirmed. Never above
    /// `cursor` (batches given up or emptied by a transform move the cursor, not this).
    pub sink_end: Lsn,
    /// The stream's `VersionId` under which `sink_end` was confirmed: after a destination
    /// change, the destination may be another database, so its position is not compared.
    pub sink_version: u32,
}

impl DeliveryState {
    /// Encodes the state as a checkpoint payload.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut b = vec![0u8; LEN];
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
        b
    }

    /// Decodes a checkpoint payload; `None` when it is not one this build writes.
    #[must_use]
    pub fn decode(b: &[u8]) -> Option<DeliveryState> {
        match (b.first(), b.len()) {
            (Some(&VERSION), LEN) | (Some(1), LEN_V1) => {}
            _ => return None,
        }
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
        let (sink_end, sink_version) = if b[0] == VERSION {
            (
                Lsn(u64_at(56)),
                u32::from_le_bytes([b[64], b[65], b[66], b[67]]),
            )
        } else {
            (Lsn(0), 0)
        };
        let state = DeliveryState {
            cursor: Lsn(u64_at(8)),
            intent,
            sink_end,
            sink_version,
        };
        if let Some(i) = state.intent {
            if i.first != state.cursor || i.end <= i.first {
                return None;
            }
        }
        if state.sink_end > state.cursor {
            return None;
        }
        Some(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_inconsistent_state() {
        let s = DeliveryState {
            cursor: Lsn(10),
            intent: Some(Intent {
                first: Lsn(10),
                end: Lsn(20),
                oldest_arrival_ms: 5,
                first_attempt_ms: 6,
                attempts: 2,
                stream_version: 3,
            }),
            sink_end: Lsn(9),
            sink_version: 3,
        };
        assert_eq!(DeliveryState::decode(&s.encode()), Some(s));
        let idle = DeliveryState {
            cursor: Lsn(7),
            intent: None,
            sink_end: Lsn(0),
            sink_version: 0,
        };
        assert_eq!(DeliveryState::decode(&idle.encode()), Some(idle));
        let mut bad = s;
        bad.cursor = Lsn(11);
        assert_eq!(DeliveryState::decode(&bad.encode()), None);
        assert_eq!(DeliveryState::decode(&[3u8; LEN]), None);
        assert_eq!(DeliveryState::decode(&[2u8; LEN_V1]), None);
    }

    #[test]
    fn reads_version_1_without_a_sink_position() {
        let s = DeliveryState {
            cursor: Lsn(10),
            intent: Some(Intent {
                first: Lsn(10),
                end: Lsn(20),
                oldest_arrival_ms: 5,
                first_attempt_ms: 6,
                attempts: 2,
                stream_version: 3,
            }),
            sink_end: Lsn(10),
            sink_version: 3,
        };
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
}
