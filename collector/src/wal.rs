//! The spool's write-ahead log: every event the collector applies (span starts and
//! ends, GPU readings, spool-overflow switches) is appended here before it is applied
//! or acknowledged. Frames are `[u32 length][u32 CRC-32][postcard payload]`, little
//! endian, in segment files `wal-<n:020>.log` that start with a magic line. A torn
//! frame at the end of the newest segment (a crash mid-write) is cut off on recovery;
//! a bad frame anywhere else is corruption and stops recovery with its location.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::error::{Context, Result, fail};
use gco_ledger::time::Micros;
use serde::{Deserialize, Serialize};

use crate::attribution::SpanStart;
use crate::gpu::Reading;

const MAGIC: &[u8; 8] = b"GCOWAL1\n";

/// One logged event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    Start {
        t: Micros,
        span: SpanStart,
    },
    End {
        t: Micros,
        id: String,
        prompt_tokens: Option<u64>,
        completion_tokens: Option<u64>,
    },
    Sample {
        t: Micros,
        readings: Vec<Reading>,
    },
    /// The spool passed (true) or fell back under (false) its size bound.
    Overflow {
        t: Micros,
        on: bool,
    },
}

pub fn segment_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("wal-{n:020}.log"))
}

/// Segment numbers present in `dir`, ascending.
pub fn segments(dir: &Path) -> Result<Vec<u64>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).with_context(|| format!("reading spool {}", dir.display()))? {
        let name = e?.file_name();
        let name = name.to_string_lossy();
        if let Some(n) = name
            .strip_prefix("wal-")
            .and_then(|s| s.strip_suffix(".log"))
            .and_then(|s| s.parse::<u64>().ok())
        {
            out.push(n);
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Appends frames to one segment.
pub struct WalWriter {
    path: PathBuf,
    out: BufWriter<File>,
    scratch: Vec<u8>,
    pub bytes: u64,
}

impl WalWriter {
    pub fn create(dir: &Path, n: u64) -> Result<Self> {
        let path = segment_path(dir, n);
        let f = OpenOptions::new()
            .create_new(true)
            .write(true)
            .open(&path)
            .with_context(|| format!("creating spool segment {}", path.display()))?;
        let mut out = BufWriter::with_capacity(1 << 16, f);
        out.write_all(MAGIC)?;
        Ok(WalWriter {
            path,
            out,
            scratch: Vec::with_capacity(256),
            bytes: MAGIC.len() as u64,
        })
    }

    /// Buffers one event; [`WalWriter::flush`] hands the buffer to the kernel.
    pub fn append(&mut self, e: &Event) -> Result<()> {
        self.scratch.clear();
        self.scratch.extend_from_slice(&[0u8; 8]);
        let body = postcard::to_extend(e, std::mem::take(&mut self.scratch))
            .context("encoding a spool event")?;
        self.scratch = body;
        let len = (self.scratch.len() - 8) as u32;
        let crc = crc32fast::hash(&self.scratch[8..]);
        self.scratch[..4].copy_from_slice(&len.to_le_bytes());
        self.scratch[4..8].copy_from_slice(&crc.to_le_bytes());
        self.out
            .write_all(&self.scratch)
            .with_context(|| format!("writing spool segment {}", self.path.display()))?;
        self.bytes += self.scratch.len() as u64;
        Ok(())
    }

    /// Writes buffered frames to the file: from here a `kill -9` loses nothing.
    pub fn flush(&mut self) -> Result<()> {
        self.out
            .flush()
            .with_context(|| format!("writing spool segment {}", self.path.display()))
    }

    /// Flushes and fsyncs: from here a power loss loses nothing.
    pub fn sync(&mut self) -> Result<()> {
        self.flush()?;
        self.out
            .get_ref()
            .sync_data()
            .with_context(|| format!("syncing spool segment {}", self.path.display()))
    }
}

/// Reads every event of segment `n`. `last` says whether it is the newest segment, where
/// a torn tail is expected after a crash and cut off (the count of dropped bytes is
/// returned so it can be logged).
pub fn read_segment(dir: &Path, n: u64, last: bool) -> Result<(Vec<Event>, u64)> {
    let path = segment_path(dir, n);
    let mut buf = Vec::new();
    File::open(&path)
        .and_then(|mut f| f.read_to_end(&mut buf))
        .with_context(|| format!("reading spool segment {}", path.display()))?;
    if buf.len() < MAGIC.len() {
        if last {
            return Ok((Vec::new(), buf.len() as u64));
        }
        fail!(
            Spool,
            "spool segment {} is truncated before its header",
            path.display()
        );
    }
    if &buf[..8] != MAGIC {
        fail!(
            Spool,
            "{} is not a gco spool segment (bad magic)",
            path.display()
        );
    }
    let mut events = Vec::new();
    let mut pos = 8usize;
    while pos < buf.len() {
        let bad = |why: &str| -> Result<(Vec<Event>, u64)> {
            fail!(
                Spool,
                "spool segment {} is corrupt at byte {pos}: {why}; move the spool aside and \
                 restart (records in it are not yet in the ledger)",
                path.display()
            )
        };
        if buf.len() - pos < 8 {
            if last {
                break;
            }
            return bad("truncated frame header");
        }
        let len = u32::from_le_bytes(buf[pos..pos + 4].try_into().unwrap_or_default()) as usize;
        let crc = u32::from_le_bytes(buf[pos + 4..pos + 8].try_into().unwrap_or_default());
        let end = pos + 8 + len;
        if end > buf.len() {
            if last {
                break;
            }
            return bad("frame runs past the end of the file");
        }
        let body = &buf[pos + 8..end];
        if crc32fast::hash(body) != crc {
            if last && end == buf.len() {
                break;
            }
            return bad("checksum mismatch");
        }
        match postcard::from_bytes::<Event>(body) {
            Ok(e) => events.push(e),
            Err(e) => return bad(&format!("undecodable event ({e})")),
        }
        pos = end;
    }
    Ok((events, (buf.len() - pos) as u64))
}

/// Writes `bytes` to `path` atomically: a temporary file, fsync, rename, directory fsync.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(bytes)
            .and_then(|_| f.sync_all())
            .with_context(|| format!("writing {}", tmp.display()))?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("renaming into {}", path.display()))?;
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = WalWriter::create(dir.path(), 1).unwrap();
        let events = vec![
            Event::Sample {
                t: 5,
                readings: vec![Reading {
                    energy_mj: Some(12),
                    power_mw: Some(70_000),
                    utilization_pct: None,
                    memory_used: Some(1 << 33),
                }],
            },
            Event::End {
                t: 9,
                id: "abc".into(),
                prompt_tokens: Some(3),
                completion_tokens: None,
            },
        ];
        for e in &events {
            w.append(e).unwrap();
        }
        w.flush().unwrap();
        drop(w);
        assert_eq!(
            read_segment(dir.path(), 1, true).unwrap(),
            (events.clone(), 0)
        );
        // A crash mid-frame leaves a torn tail: cut off in the newest segment...
        let p = segment_path(dir.path(), 1);
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(&[40, 0, 0, 0, 1, 2]).unwrap();
        assert_eq!(read_segment(dir.path(), 1, true).unwrap(), (events, 6));
        // ...but corruption in an older segment is an error naming the place.
        let e = read_segment(dir.path(), 1, false).unwrap_err().to_string();
        assert!(e.contains("corrupt at byte"), "{e}");
        assert_eq!(segments(dir.path()).unwrap(), vec![1]);
    }
}
