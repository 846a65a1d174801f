//! What the black-box tests of Java programs share: building a Maven
//! project offline, and running its programs as JVM processes that a test
//! can kill (SIGKILL) and restart, each writing to its own log file that a
//! test waits on and shows when it fails.
//!
//! Maven runs offline (`mvn -o`): `.ci/run` resolves each project
//! beforehand. Java, Maven or a dependency missing makes a test fail when
//! `SLUICE_REQUIRE_KAFKA_CLIENTS=1` (as in CI), and otherwise be skipped
//! with a message that says so.

#![allow(dead_code)]

use std::{
    collections::HashMap,
    fs::File,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Mutex, OnceLock},
    time::{Duration, Instant},
};

/// A build of a project that runs longer has hung (one takes well under a
/// minute).
const BUILD_SECONDS_MAX: u64 = 300;

/// Fails the test under `SLUICE_REQUIRE_KAFKA_CLIENTS=1`, and otherwise
/// says why it is skipped; false either way. `install` says how to install
/// what is missing.
pub fn missing(what: &str, install: &str) -> bool {
    if std::env::var("SLUICE_REQUIRE_KAFKA_CLIENTS").as_deref() == Ok("1") {
        panic!("{what} ({install}) and SLUICE_REQUIRE_KAFKA_CLIENTS=1");
    }
    eprintln!("SKIPPED: {what} ({install}); SLUICE_REQUIRE_KAFKA_CLIENTS=1 makes this a failure");
    false
}

/// Whether `program argument` runs and succeeds.
pub fn runs(program: &str, argument: &str) -> bool {
    Command::new(program)
        .arg(argument)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Whether Maven's output says that something was not in the local
/// repository (what `mvn -o` cannot fetch).
pub fn unresolved(output: &str) -> bool {
    output.contains("offline mode") || output.contains("could not be resolved")
}

/// The end of a file, at most `bytes` of it.
pub fn tail(path: &Path, bytes: usize) -> String {
    let text = String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned();
    let start = text.len().saturating_sub(bytes);
    let start = (start..text.len())
        .find(|at| text.is_char_boundary(*at))
        .unwrap_or(text.len());
    text[start..].to_string()
}

/// Builds the Maven project in `project` (`mvn -o compile`, which writes
/// the runtime classpath to `target/classpath.txt`), once per test process;
/// the classpath to run its programs with, or `None` if they cannot run
/// (see [`missing`]). A compile error fails.
pub fn build(project: &Path, install: &str) -> Option<String> {
    if !runs("java", "-version") {
        missing("java is not installed", install);
        return None;
    }
    if !runs("mvn", "-v") {
        missing("mvn is not installed", install);
        return None;
    }
    type Builds = Mutex<HashMap<PathBuf, Result<String, String>>>;
    static BUILDS: OnceLock<Builds> = OnceLock::new();
    // Held while building: the tests of a process share one build.
    let mut builds = BUILDS.get_or_init(Default::default).lock().unwrap();
    let result = builds
        .entry(project.to_path_buf())
        .or_insert_with(|| compile(project))
        .clone();
    drop(builds);
    match result {
        Ok(classpath) => Some(classpath),
        Err(output) if unresolved(&output) => {
            missing(
                &format!(
                    "a dependency of {} is not in the local repository:\n{output}",
                    project.display()
                ),
                install,
            );
            None
        }
        Err(output) => panic!("{} does not build:\n{output}", project.display()),
    }
}

fn compile(project: &Path) -> Result<String, String> {
    let log = project.join("target/build.log");
    std::fs::create_dir_all(project.join("target")).unwrap();
    let mut child = Command::new("mvn")
        .args(["-B", "-q", "-o", "-Dstyle.color=never", "-f"])
        .arg(project.join("pom.xml"))
        .arg("compile")
        .stdin(Stdio::null())
        .stdout(File::create(&log).unwrap())
        .stderr(Stdio::from(
            File::options().append(true).open(&log).unwrap(),
        ))
        .spawn()
        .unwrap_or_else(|error| panic!("mvn: {error}"));
    let deadline = Instant::now() + Duration::from_secs(BUILD_SECONDS_MAX);
    let success = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.success();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break false;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = tail(&log, 20_000);
    if !success {
        return Err(output);
    }
    let dependencies = std::fs::read_to_string(project.join("target/classpath.txt"))
        .map_err(|error| format!("target/classpath.txt: {error}\n{output}"))?;
    Ok(format!(
        "{}:{}",
        project.join("target/classes").display(),
        dependencies.trim()
    ))
}

/// A JVM process of a test, its standard output and error in one log
/// file; killed with SIGKILL when dropped, so that a failing test leaves
/// none behind.
pub struct JavaProcess {
    pub name: String,
    child: Option<Child>,
    pub log: PathBuf,
}

impl JavaProcess {
    /// Runs `java -cp classpath main arguments`, logging to `name.log` in
    /// `log_dir` (appended to: a restarted process's log follows the last
    /// one's).
    pub fn start(
        name: &str,
        classpath: &str,
        main: &str,
        arguments: &[&str],
        log_dir: &Path,
    ) -> JavaProcess {
        let log = log_dir.join(format!("{name}.log"));
        let out = File::options()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let err = out.try_clone().unwrap();
        let child = Command::new("java")
            .args(["-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"])
            .arg("-cp")
            .arg(classpath)
            .arg(main)
            .args(arguments)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|error| panic!("java {main}: {error}"));
        JavaProcess {
            name: name.to_string(),
            child: Some(child),
            log,
        }
    }

    /// The log so far.
    pub fn output(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    /// The end of the log, for a failure's message.
    pub fn log_tail(&self) -> String {
        format!(
            "--- {} ({}), its log's end:\n{}",
            self.name,
            self.log.display(),
            tail(&self.log, 30_000)
        )
    }

    /// Its exit status if it has ended.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        let child = self.child.as_mut()?;
        child.try_wait().unwrap()
    }

    /// Waits until `done` holds of the log, or panics (with the log's end)
    /// after `timeout` or if the process ends first.
    pub fn wait_for(&mut self, what: &str, timeout: Duration, done: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + timeout;
        loop {
            if done(&self.output()) {
                return;
            }
            if let Some(status) = self.exited() {
                if done(&self.output()) {
                    return;
                }
                panic!(
                    "{} exited ({status}) before {what}\n{}",
                    self.name,
                    self.log_tail()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{} not {what} within {timeout:?}\n{}",
                self.name,
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits for the process to end by itself; its exit status, or a panic
    /// (with the log's end) after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exited() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} still ran after {timeout:?}\n{}",
                self.name,
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGKILL: the JVM gets no chance to close, commit or flush anything.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for JavaProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}
