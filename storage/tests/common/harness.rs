//! The `main` of a test binary whose tests start children of their own
//! (`harness = false` in Cargo.toml).
//!
//! Run as `<binary> --child NAME ARGS...`, the binary is the child `NAME`, a
//! function of the test file, and nothing else: a child is never a test, so
//! it is never counted as one that passed. Otherwise it runs its tests the
//! way libtest does as far as `cargo test` uses it: name filters (`--exact`,
//! `--skip`), `--list`, `--test-threads`, a line per test as it finishes,
//! a summary, and exit status 101 if a test failed. Output is not captured.
//!
//! [`ReportingChild`] starts a child with its standard output piped and
//! hands its whole lines to the parent as they come.

#![allow(dead_code)]

use std::{
    fs::File,
    io::{BufRead, BufReader},
    path::Path,
    process::{Command, ExitCode, ExitStatus, Stdio},
    sync::{
        atomic::{AtomicUsize, Ordering},
        mpsc, Mutex,
    },
    time::{Duration, Instant},
};

/// The first argument that makes the binary a child.
const CHILD_FLAG: &str = "--child";

/// libtest's exit status when a test failed.
const FAILED_EXIT_STATUS: u8 = 101;

/// A test: a function that passes unless it panics.
pub struct Test {
    pub name: &'static str,
    pub body: fn(),
}

/// A child process's body, given the arguments after its name.
pub struct Child {
    pub name: &'static str,
    pub body: fn(&[String]),
}

/// `[Test]` of the named functions.
#[allow(unused_macros)]
macro_rules! tests {
    ($($name:ident),* $(,)?) => {
        [$($crate::common::harness::Test { name: stringify!($name), body: $name }),*]
    };
}

/// `[Child]` of the named functions.
#[allow(unused_macros)]
macro_rules! children {
    ($($name:ident),* $(,)?) => {
        [$($crate::common::harness::Child { name: stringify!($name), body: $name }),*]
    };
}

/// What the command line asks of the tests.
#[derive(Default)]
struct Selection {
    filters: Vec<String>,
    skips: Vec<String>,
    exact: bool,
    list: bool,
    /// `--ignored`: only ignored tests, and there are none.
    ignored_only: bool,
    threads: Option<usize>,
}

impl Selection {
    fn parse(args: &[String]) -> Selection {
        let mut selection = Selection::default();
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let (flag, inline_value) = match arg.split_once('=') {
                Some((flag, value)) if flag.starts_with("--") => (flag, Some(value.to_string())),
                _ => (arg.as_str(), None),
            };
            let mut value = || inline_value.clone().or_else(|| args.next().cloned());
            match flag {
                "--exact" => selection.exact = true,
                "--list" => selection.list = true,
                "--ignored" => selection.ignored_only = true,
                "--skip" => selection.skips.extend(value()),
                "--test-threads" => {
                    selection.threads = value().and_then(|threads| threads.parse().ok());
                }
                // Flags with a value that changes nothing here.
                "--format" | "--color" | "-Z" => {
                    value();
                }
                flag if flag.starts_with('-') => {}
                filter => selection.filters.push(filter.to_string()),
            }
        }
        selection
    }

    fn matches(&self, name: &str) -> bool {
        let hit = |filter: &String| {
            if self.exact {
                name == filter
            } else {
                name.contains(filter.as_str())
            }
        };
        !self.ignored_only
            && (self.filters.is_empty() || self.filters.iter().any(hit))
            && !self.skips.iter().any(hit)
    }
}

/// The binary's `main`: a child if the arguments say so, else the tests.
pub fn main(tests: &[Test], children: &[Child]) -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(CHILD_FLAG) {
        let name = args.get(1).map(String::as_str).unwrap_or_default();
        let Some(child) = children.iter().find(|child| child.name == name) else {
            eprintln!("no child named {name:?}");
            return ExitCode::from(2);
        };
        (child.body)(&args[2..]);
        return ExitCode::SUCCESS;
    }
    let selection = Selection::parse(&args);
    let selected: Vec<&Test> = tests
        .iter()
        .filter(|test| selection.matches(test.name))
        .collect();
    if selection.list {
        for test in &selected {
            println!("{}: test", test.name);
        }
        return ExitCode::SUCCESS;
    }
    run_tests(&selected, tests.len(), selection.threads)
}

fn run_tests(selected: &[&Test], total: usize, threads: Option<usize>) -> ExitCode {
    let started = Instant::now();
    let threads = threads
        .or_else(|| std::env::var("RUST_TEST_THREADS").ok()?.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, selected.len().max(1));
    println!("\nrunning {} tests", selected.len());
    let next = AtomicUsize::new(0);
    let failed = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let Some(test) = selected.get(next.fetch_add(1, Ordering::SeqCst)) else {
                    return;
                };
                // A thread named after the test, so its panic message says
                // which test failed.
                let outcome = std::thread::Builder::new()
                    .name(test.name.to_string())
                    .spawn(test.body)
                    .expect("a test thread starts")
                    .join();
                match outcome {
                    Ok(()) => println!("test {} ... ok", test.name),
                    Err(_) => {
                        println!("test {} ... FAILED", test.name);
                        failed.lock().expect("no panic holds it").push(test.name);
                    }
                }
            });
        }
    });
    let failed = failed.into_inner().expect("no panic holds it");
    if !failed.is_empty() {
        println!("\nfailures:");
        for name in &failed {
            println!("    {name}");
        }
    }
    println!(
        "\ntest result: {}. {} passed; {} failed; 0 ignored; 0 measured; {} filtered out; \
         finished in {:.2}s\n",
        if failed.is_empty() { "ok" } else { "FAILED" },
        selected.len() - failed.len(),
        failed.len(),
        total - selected.len(),
        started.elapsed().as_secs_f64()
    );
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(FAILED_EXIT_STATUS)
    }
}

/// A child of this binary (`--child NAME ARGS...`) whose standard output is
/// read line by line as it comes; killed when dropped.
pub struct ReportingChild {
    child: std::process::Child,
    lines: mpsc::Receiver<String>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl ReportingChild {
    /// Starts the child `name` with `args`, its standard error to the file
    /// `stderr_path`.
    pub fn spawn(name: &str, args: &[String], stderr_path: &Path) -> ReportingChild {
        let mut child = Command::new(std::env::current_exe().expect("the test binary's path"))
            .arg(CHILD_FLAG)
            .arg(name)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(File::create(stderr_path).expect("stderr file"))
            .spawn()
            .expect("child starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (lines_tx, lines) = mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            let mut stdout = BufReader::new(stdout);
            let mut line = Vec::new();
            loop {
                line.clear();
                match stdout.read_until(b'\n', &mut line) {
                    // A line cut short by a kill was never a whole report.
                    Ok(0) | Err(_) => return,
                    Ok(_) if line.last() != Some(&b'\n') => return,
                    Ok(_) => {
                        let text = String::from_utf8_lossy(&line[..line.len() - 1]);
                        if lines_tx.send(text.into_owned()).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        ReportingChild {
            child,
            lines,
            reader: Some(reader),
        }
    }

    /// The next whole line, if one comes within `timeout`.
    pub fn next_line(&self, timeout: Duration) -> Option<String> {
        self.lines.recv_timeout(timeout).ok()
    }

    /// Whether the child has exited (by itself: it was not killed yet).
    pub fn has_exited(&mut self) -> bool {
        self.child.try_wait().ok().flatten().is_some()
    }

    /// SIGKILL, and the child's status once reaped.
    pub fn kill(&mut self) -> ExitStatus {
        let _ = self.child.kill();
        self.child.wait().expect("reap the child")
    }

    /// The lines the child printed that were not taken yet, up to its end
    /// (call after [`ReportingChild::kill`]).
    pub fn rest(mut self) -> Vec<String> {
        let rest = self.lines.iter().collect();
        if let Some(reader) = self.reader.take() {
            reader.join().expect("stdout reader");
        }
        rest
    }
}

impl Drop for ReportingChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A child's report: one line to stdout, flushed, so that it reaches the
/// parent before the child's next step can be acknowledged.
pub fn report(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_fmt(format_args!("{line}\n"))
        .and_then(|()| stdout.flush())
        .expect("stdout is the parent's pipe");
}
