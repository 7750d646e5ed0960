#!/usr/bin/env python3
"""Writes the seed inputs of the fuzz targets (run from anywhere; rewrites the files beside it).

Valid frames carry a CRC32 that a fuzzer only finds slowly from scratch, so the seeds give it
real frames, real segment headers and small append programs to mutate. The format is the one
drawn in wal/src/format.rs; zlib's crc32 is the same IEEE CRC32 as crc32fast.
"""
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))


def frame(first_lsn, records, arrival_ms=1_764_063_000_000):
    body = b"".join(struct.pack("<I", len(r)) + r for r in records)
    length = 32 + len(body)
    rest = struct.pack("<HBBIQQ", 0x5748, 1, 0, len(records), first_lsn, arrival_ms) + body
    crc = zlib.crc32(struct.pack("<I", length) + rest) & 0xFFFFFFFF
    f = struct.pack("<II", length, crc) + rest
    return f + b"\0" * (-len(f) % 8)


def header(base, segment_bytes=64 * 1024, index_interval=4096):
    h = b"HYDRSEG\0" + struct.pack("<HHIQQQ", 1, 0, index_interval, base, segment_bytes, 1)
    h += b"\0" * (60 - len(h))
    return h + struct.pack("<I", zlib.crc32(h) & 0xFFFFFFFF)


def frames(n, per=2):
    out, lsn = b"", 0
    for i in range(n):
        out += frame(lsn, [b"record %d.%d" % (i, j) for j in range(per)])
        lsn += per
    return out


def write(target, name, data):
    with open(os.path.join(HERE, target, name), "wb") as f:
        f.write(data)


# frame_decode: a frame alone, frames back to back, and the round-trip layout
# (first_lsn u64 | arrival u64 | prefix u8 | flip u16 | len-prefixed records).
write("frame_decode", "one-frame", frame(7, [b"hello", b"", b"world"]))
write("frame_decode", "three-frames", frames(3))
write("frame_decode", "round-trip",
      struct.pack("<QQBH", 42, 1_764_063_000_000, 3, 77) + b"\x05hello\x00\x03abc")

# recovery_scan, mode 0: frames as the data region; a torn last frame; an LSN out of sequence.
good = frames(6)
write("recovery_scan", "data-frames", b"\x00" + good)
write("recovery_scan", "data-torn-tail", b"\x00" + good + frame(12, [b"torn" * 50])[:100])
write("recovery_scan", "data-lsn-gap", b"\x00" + good + frame(99, [b"late"]))
# mode 1: a whole segment image from its first byte (header page, then frames).
page = header(0).ljust(4096, b"\0")
write("recovery_scan", "raw-segment", b"\x01" + page + frames(4))
# mode 2: segment_bytes u64 | index_interval u32 | base u8, then frames.
write("recovery_scan", "header-fields", b"\x02" + struct.pack("<QIB", 64 * 1024, 4096, 0) + good)
# mode 3: programs. Appends (op < 0xc0: op%4+1 records of 4*len bytes, waited), unwaited
# appends (0xc0..0xdf), bit flips (0xe0: file, offset lo, offset hi, mask), power loss (0xf0).
write("recovery_scan", "log-rotate", b"\x03" + bytes([3, 250] * 12))
write("recovery_scan", "log-crash", b"\x03" + bytes([1, 100, 2, 200, 0xC3, 250, 0xC0, 9, 0xF0, 5]))
write("recovery_scan", "log-flip-sealed",
      b"\x03" + bytes([3, 250] * 8) + bytes([0xE0, 0, 0x50, 0x02, 0x10]))
write("recovery_scan", "log-flip-tail",
      b"\x03" + bytes([3, 250] * 8) + bytes([0xE0, 1, 0x50, 0x02, 0x01]))

# api_request: operation index (Operation::ALL: 5 PutRecord, 6 PutRecordBatch) | content type
# index | body. Bodies the PutRecord/PutRecordBatch fast path takes, for the fuzzer to mutate
# around (the target checks the fast path against the general decoder).
os.makedirs(os.path.join(HERE, "api_request"), exist_ok=True)
write("api_request", "put-record-batch",
      b"\x06\x00" + b'{"DeliveryStreamName":"s","Records":[{"Data":"aGVsbG8K"},{"Data":"AP8H"},{"Data":"eA"}]}')
write("api_request", "put-record-batch-spaced",
      b"\x06\x00" + b'{ "Records" : [ {"Data": "aGVsbG8K"} ],\n "DeliveryStreamName": "a.b-c_d" }')
write("api_request", "put-record",
      b"\x05\x00" + b'{"DeliveryStreamName":"s","Record":{"Data":"aGVsbG8K"}}')
write("api_request", "put-record-batch-escaped",
      b"\x06\x00" + b'{"DeliveryStreamName":"s","Records":[{"Data":"aGVs\\/bG8K"}]}')
