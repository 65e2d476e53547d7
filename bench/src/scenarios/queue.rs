//! `queue`: one publisher -> a K-member queue group. The members' counts must
//! add up to exactly `msgs`, with every sequence number seen exactly once
//! (checked via per-member bitmaps); reports the distribution.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{bail, Result};

use super::pubsub::SUB_READ_BUF;
use super::{abort_on_err, await_total, first_error, join};
use crate::cli::Args;
use crate::conn::{Conn, ABORT};
use crate::publisher::{publish, ConsumerWindow};
use crate::report::{mb_per_sec, r1, thousands, Report};
use crate::subscriber::{receive, SeqCheck, SubResult};

pub fn run(a: &Args, addr: SocketAddr) -> Result<Report> {
    let deadline = Instant::now() + a.timeout;
    let mut members = Vec::with_capacity(a.subs);
    for i in 0..a.subs {
        let mut c = Conn::connect_with(
            addr,
            &format!("bench-q-{i}"),
            &a.sub_connect_extra(),
            SUB_READ_BUF,
            deadline,
        )?;
        c.write(format!("SUB {} bench-group {}\r\n", a.subject, i + 1).as_bytes())?;
        c.flush()?;
        members.push(c);
    }
    let mut pubc = Conn::connect_with(addr, "bench-pub", &a.user_pass_extra(), 4096, deadline)?;
    let counters: Vec<AtomicU64> = (0..a.subs).map(|_| AtomicU64::new(0)).collect();
    let pub_done = AtomicBool::new(false);
    let stop = AtomicBool::new(false);

    let start = Instant::now();
    let (pub_secs, done_at, results) =
        std::thread::scope(|s| -> Result<(f64, Instant, Vec<SubResult>)> {
            let mut handles = Vec::new();
            for (conn, ctr) in members.iter_mut().zip(&counters) {
                let stop = &stop;
                handles.push(s.spawn(move || {
                    abort_on_err(|| {
                        receive(
                            conn,
                            a.size,
                            a.expect(),
                            a.msgs,
                            SeqCheck::Increasing,
                            ctr,
                            stop,
                        )
                    })
                }));
            }
            let counters = &counters;
            let pub_done = &pub_done;
            let pub_handle = s.spawn(move || {
                abort_on_err(|| {
                    let r = publish(
                        &mut pubc,
                        &a.subject,
                        a.size,
                        a.payload,
                        0,
                        a.msgs,
                        a.window,
                        &ConsumerWindow::Sum(counters),
                    );
                    pub_done.store(true, Ordering::Release);
                    r
                })
            });
            let watch = await_total(counters, a.msgs, pub_done, deadline);
            if watch.is_err() {
                ABORT.store(true, Ordering::Relaxed);
            }
            stop.store(true, Ordering::Release);
            let mut errs = Vec::new();
            let mut results = Vec::new();
            for (i, h) in handles.into_iter().enumerate() {
                match join(h, &format!("queue member {i}")) {
                    Ok(r) => results.push(r),
                    Err(e) => errs.push(e),
                }
            }
            let pub_secs = match join(pub_handle, "publisher") {
                Ok(r) => r.elapsed.as_secs_f64(),
                Err(e) => {
                    errs.push(e);
                    0.0
                }
            };
            let done_at = match watch {
                Ok(t) => t,
                Err(e) => {
                    errs.push(e);
                    start
                }
            };
            first_error(errs)?;
            Ok((pub_secs, done_at, results))
        })?;

    // Exactly-once check: total count and (if payloads carry sequence numbers)
    // the union of the members' bitmaps must cover 0..msgs with no overlap.
    let counts: Vec<u64> = results.iter().map(|r| r.received).collect();
    let total: u64 = counts.iter().sum();
    if total != a.msgs {
        bail!(
            "queue group received {total} messages in total, expected exactly {}",
            a.msgs
        );
    }
    if a.size >= 8 {
        let words = a.msgs.div_ceil(64) as usize;
        let mut union = vec![0u64; words];
        for r in &results {
            for (u, w) in union.iter_mut().zip(&r.seen) {
                if *u & *w != 0 {
                    bail!("a message was delivered to more than one queue member");
                }
                *u |= *w;
            }
        }
        let covered: u64 = union.iter().map(|w| u64::from(w.count_ones())).sum();
        if covered != a.msgs {
            bail!(
                "only {covered} distinct sequence numbers of {} were delivered",
                a.msgs
            );
        }
    }

    let secs = done_at.duration_since(start).as_secs_f64().max(1e-9);
    let rate = a.msgs as f64 / secs;
    let pub_rate = a.msgs as f64 / pub_secs.max(1e-9);
    let shares: Vec<String> = counts
        .iter()
        .map(|c| format!("{:.1}%", *c as f64 * 100.0 / a.msgs as f64))
        .collect();
    let mut r = Report::new(
        "queue",
        format!("queue 1->{} members {}x{}B", a.subs, a.msgs, a.size),
    );
    r.say(&format!(
        ": delivered {} msgs/s ({:.1} MB/s), publisher {} msgs/s; distribution {:?} = [{}]; exactly-once verified",
        thousands(rate),
        mb_per_sec(a.msgs, a.size, secs),
        thousands(pub_rate),
        counts,
        shares.join(", ")
    ));
    r.field("msgs", a.msgs)
        .field("size", a.size)
        .field("members", a.subs)
        .field("elapsed_s", secs)
        .field("msgs_per_sec", r1(rate))
        .field("mb_per_sec", r1(mb_per_sec(a.msgs, a.size, secs)))
        .field("pub_msgs_per_sec", r1(pub_rate))
        .field("distribution", counts);
    Ok(r)
}
