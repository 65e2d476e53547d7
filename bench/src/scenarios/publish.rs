//! `pub`: N publishers, no subscribers. Measures how fast the server ingests
//! (parses and discards) PUB frames. Each publisher ends with PING/PONG, so
//! the clock stops only once the server has processed every message.

use std::net::SocketAddr;
use std::sync::Barrier;
use std::time::Instant;

use anyhow::Result;

use super::{abort_on_err, first_error, join};
use crate::cli::Args;
use crate::conn::Conn;
use crate::publisher::{publish, ConsumerWindow};
use crate::report::{mb_per_sec, r1, thousands, Report};

pub fn run(a: &Args, addr: SocketAddr) -> Result<Report> {
    let deadline = Instant::now() + a.timeout;
    let mut conns = (0..a.pubs)
        .map(|i| {
            Conn::connect_with(
                addr,
                &format!("bench-pub-{i}"),
                &a.user_pass_extra(),
                4096,
                deadline,
            )
        })
        .collect::<Result<Vec<_>>>()?;
    // Split the messages across publishers (the first ones take the remainder).
    let per = a.msgs / a.pubs as u64;
    let extra = a.msgs % a.pubs as u64;
    let barrier = Barrier::new(a.pubs + 1);

    let (start, ends) = std::thread::scope(|s| -> Result<(Instant, Vec<Instant>)> {
        let mut handles = Vec::new();
        let mut first = 0u64;
        for (i, conn) in conns.iter_mut().enumerate() {
            let count = per + u64::from((i as u64) < extra);
            let barrier = &barrier;
            let first_seq = first;
            first += count;
            handles.push(s.spawn(move || {
                barrier.wait();
                abort_on_err(|| {
                    publish(
                        conn,
                        &a.subject,
                        a.size,
                        a.payload,
                        first_seq,
                        count,
                        a.window,
                        &ConsumerWindow::None,
                    )?;
                    Ok(Instant::now())
                })
            }));
        }
        barrier.wait();
        let start = Instant::now();
        let mut ends = Vec::new();
        let mut errs = Vec::new();
        for (i, h) in handles.into_iter().enumerate() {
            match join(h, &format!("publisher {i}")) {
                Ok(t) => ends.push(t),
                Err(e) => errs.push(e),
            }
        }
        first_error(errs)?;
        Ok((start, ends))
    })?;

    let end = ends.into_iter().max().unwrap_or(start);
    let secs = end.duration_since(start).as_secs_f64().max(1e-9);
    let rate = a.msgs as f64 / secs;
    let mbs = mb_per_sec(a.msgs, a.size, secs);
    let mut r = Report::new("pub", format!("pub {}x{}B pubs={}", a.msgs, a.size, a.pubs));
    r.say(&format!(
        ": {} msgs/s, {:.1} MB/s, {:.3} s",
        thousands(rate),
        mbs,
        secs
    ));
    r.field("msgs", a.msgs)
        .field("size", a.size)
        .field("pubs", a.pubs)
        .field("elapsed_s", secs)
        .field("msgs_per_sec", r1(rate))
        .field("mb_per_sec", r1(mbs));
    Ok(r)
}
