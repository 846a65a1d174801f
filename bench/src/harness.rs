//! What a harness thread does whatever client it drives: a glommio
//! executor pinned to its core, the start shared with every other thread,
//! a report to the main thread each second, and the final counts.
//!
//! A driver ([`crate::driver`]) brings only its clients; the tasks that run
//! them on the open-loop schedule ([`crate::schedule`]) are the same for
//! every driver.

use std::{
    cell::RefCell,
    future::Future,
    rc::Rc,
    sync::{atomic::Ordering, mpsc::Sender, Arc},
    time::Duration,
};

use glommio::{timer::sleep, ExecutorJoinHandle, LocalExecutorBuilder, Placement, Task};

use crate::{
    driver::Recorder,
    metrics::{Report, WorkerMetrics},
    run::{RunContext, Timeline},
    schedule::{RunClock, NANOS_PER_SECOND},
    BenchError,
};

/// The harness thread's counters, shared by its tasks (one per executor,
/// never crossing threads).
pub type Metrics = Rc<RefCell<WorkerMetrics>>;

/// The tasks a driver started on one harness thread.
pub struct Tasks {
    /// Each ends once its producer has sent everything and heard every
    /// outcome (or the drain deadline passed).
    pub producers: Vec<Task<()>>,
    /// Each ends when [`RunContext::consumers_done`] says so.
    pub consumers: Vec<Task<()>>,
}

/// Runs `work` on an executor pinned to `cpu` and waits for it.
pub fn on_core<F, Fut>(cpu: usize, name: &str, work: F) -> Result<(), BenchError>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), BenchError>> + 'static,
{
    spawn_on_core(cpu, name, work)?
        .join()
        .map_err(|error| BenchError::Worker(error.to_string()))?
}

/// Starts `work` on an executor pinned to `cpu`.
pub fn spawn_on_core<F, Fut>(
    cpu: usize,
    name: &str,
    work: F,
) -> Result<ExecutorJoinHandle<Result<(), BenchError>>, BenchError>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), BenchError>> + 'static,
{
    LocalExecutorBuilder::new(Placement::Fixed(cpu))
        .name(name)
        .spawn(work)
        .map_err(|error| BenchError::Executor {
            cpu,
            reason: error.to_string(),
        })
}

/// The body of one harness thread, after its clients connected (`ready`):
/// waits for every other thread, starts the driver's tasks with `start`,
/// reports each second while they run, and the totals when they are done.
///
/// A thread whose clients could not connect stops the whole run before it
/// starts, and returns why.
pub async fn run_worker<Ready, Start>(
    worker: usize,
    context: &Arc<RunContext>,
    reports: Sender<Report>,
    ready: Result<Ready, BenchError>,
    start: Start,
) -> Result<(), BenchError>
where
    Start: FnOnce(Ready, Recorder) -> Tasks,
{
    if ready.is_err() {
        context.abort.store(true, Ordering::Release);
    }
    let started = context.wait_for_start();
    let ready = ready?;
    let Some(timeline) = started else {
        return Ok(()); // another thread failed and says why
    };
    let metrics: Metrics = Rc::new(RefCell::new(WorkerMetrics::new(
        timeline.start,
        timeline.measure_start..timeline.end,
    )));

    let reporter = glommio::spawn_local(report_every_second(
        worker,
        context.clock,
        timeline,
        metrics.clone(),
        reports.clone(),
    ));
    let tasks = start(
        ready,
        Recorder::new(context.clone(), timeline, metrics.clone()),
    );
    for task in tasks.producers {
        task.await;
        context.producers_running.fetch_sub(1, Ordering::AcqRel);
    }
    for task in tasks.consumers {
        task.await;
    }
    reporter.cancel().await;

    let metrics = Rc::try_unwrap(metrics)
        .map_err(|_| ())
        .expect("every task is done")
        .into_inner();
    let (seconds, totals) = metrics.finish();
    for report in seconds {
        let _ = reports.send(Report::Second { worker, report });
    }
    let _ = reports.send(Report::Final {
        worker,
        report: totals,
    });
    Ok(())
}

/// Sends each closed second's counts to the main thread, a little after
/// the second ends.
async fn report_every_second(
    worker: usize,
    clock: RunClock,
    timeline: Timeline,
    metrics: Metrics,
    reports: Sender<Report>,
) {
    let mut second = 1;
    loop {
        sleep(clock.until(timeline.start + second * NANOS_PER_SECOND)).await;
        sleep(Duration::from_millis(2)).await;
        let finished = {
            let mut metrics = metrics.borrow_mut();
            metrics.roll(clock.now());
            metrics.take_finished()
        };
        for report in finished {
            if reports.send(Report::Second { worker, report }).is_err() {
                return;
            }
        }
        second += 1;
    }
}
