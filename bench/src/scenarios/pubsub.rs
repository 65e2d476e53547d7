//! `pubsub`: one publisher, K plain subscribers (K=1: 1->1, K>1: fan-out).
//! Every subscriber must receive exactly `msgs` messages, in order, with
//! intact sequence numbers; anything else fails the run.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use anyhow::Result;

use super::{abort_on_err, await_total, first_error, join};
use crate::cli::Args;
use crate::conn::{Conn, ABORT};
use crate::publisher::{publish, ConsumerWindow, PayloadKind};
use crate::report::{mb_per_sec, r1, thousands, Report};
use crate::subscriber::{receive, SeqCheck};

/// Read buffer for subscriber connections.
pub const SUB_READ_BUF: usize = 512 * 1024;

pub fn run(a: &Args, addr: SocketAddr) -> Result<Report> {
    let deadline = Instant::now() + a.timeout;
    let mut subs = Vec::with_capacity(a.subs);
    for i in 0..a.subs {
        let mut c = Conn::connect_with(
            addr,
            &format!("bench-sub-{i}"),
            &a.sub_connect_extra(),
            SUB_READ_BUF,
            deadline,
        )?;
        c.write(format!("SUB {} {}\r\n", a.subject, i + 1).as_bytes())?;
        c.flush()?; // the subscription is registered once PONG is back
        subs.push(c);
    }
    let mut pubc = Conn::connect_with(addr, "bench-pub", &a.user_pass_extra(), 4096, deadline)?;
    let counters: Vec<AtomicU64> = (0..a.subs).map(|_| AtomicU64::new(0)).collect();
    let pub_done = AtomicBool::new(false);
    let stop = AtomicBool::new(false);

    let start = Instant::now();
    let (pub_secs, sub_ends, redacted) =
        std::thread::scope(|s| -> Result<(f64, Vec<Instant>, u64)> {
            let mut sub_handles = Vec::new();
            for (conn, ctr) in subs.iter_mut().zip(&counters) {
                let stop = &stop;
                sub_handles.push(s.spawn(move || {
                    abort_on_err(|| {
                        receive(conn, a.size, a.expect(), a.msgs, SeqCheck::Exact, ctr, stop)
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
                        &ConsumerWindow::Min(counters),
                    );
                    pub_done.store(true, Ordering::Release);
                    r
                })
            });
            let watch = await_total(counters, a.msgs * a.subs as u64, pub_done, deadline);
            if watch.is_err() {
                ABORT.store(true, Ordering::Relaxed);
            }
            let mut errs = Vec::new();
            let mut ends = Vec::new();
            let mut redacted = 0;
            for (i, h) in sub_handles.into_iter().enumerate() {
                match join(h, &format!("subscriber {i}")) {
                    Ok(r) => {
                        ends.push(r.done_at);
                        redacted += r.redacted;
                    }
                    Err(e) => errs.push(e),
                }
            }
            let pub_res = join(pub_handle, "publisher");
            let pub_secs = match pub_res {
                Ok(r) => r.elapsed.as_secs_f64(),
                Err(e) => {
                    errs.push(e);
                    0.0
                }
            };
            if let Err(e) = watch {
                errs.push(e);
            }
            first_error(errs)?;
            Ok((pub_secs, ends, redacted))
        })?;

    let end = sub_ends.into_iter().max().unwrap_or(start);
    let deliver_secs = end.duration_since(start).as_secs_f64().max(1e-9);
    let delivered = a.msgs * a.subs as u64;
    let pub_rate = a.msgs as f64 / pub_secs.max(1e-9);
    let del_rate = delivered as f64 / deliver_secs;
    let mut r = Report::new(
        "pubsub",
        format!(
            "pubsub 1->{} {}x{}B{}",
            a.subs,
            a.msgs,
            a.size,
            if a.payload == PayloadKind::Pii {
                " (pii payload)"
            } else {
                ""
            }
        ),
    );
    r.say(&format!(
        ": publisher {} msgs/s ({:.1} MB/s); delivered {} msgs/s aggregate ({:.1} MB/s); all {} subscribers got all {} msgs in order",
        thousands(pub_rate),
        mb_per_sec(a.msgs, a.size, pub_secs),
        thousands(del_rate),
        mb_per_sec(delivered, a.size, deliver_secs),
        a.subs,
        a.msgs
    ));
    if a.expect_redacted {
        r.say(&format!("; {redacted} arrived redacted as expected"));
    }
    r.field("msgs", a.msgs)
        .field("size", a.size)
        .field("subs", a.subs)
        .field("elapsed_s", deliver_secs)
        .field("msgs_per_sec", r1(pub_rate))
        .field("mb_per_sec", r1(mb_per_sec(a.msgs, a.size, pub_secs)))
        .field(
            "payload",
            match a.payload {
                PayloadKind::Binary => "binary",
                PayloadKind::Pii => "pii",
            },
        )
        .field("redacted_msgs", redacted)
        .field("delivered_msgs", delivered)
        .field("delivered_msgs_per_sec", r1(del_rate))
        .field(
            "delivered_mb_per_sec",
            r1(mb_per_sec(delivered, a.size, deliver_secs)),
        );
    Ok(r)
}
