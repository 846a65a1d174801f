//! What the black-box tests of Java programs share: building a Maven
//! project offline, and running its programs as JVM processes that a test
//! can kill (SIGKILL) and restart, each writing to its own log file that a
//! test waits on and shows when it fails; and, in [`kafka_clients`], the
//! JUnit tests of Kafka's own Java client, built with each version of it
//! and run one class at a time by Maven.
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

/// The JUnit tests of Kafka's own Java client (`org.apache.kafka:kafka-clients`)
/// in `tests/java_clients/`, a Maven project built with each kafka-clients
/// version of its `versions` file: compiled once per version and test
/// process, and run a class (or one test of it) at a time by Maven against
/// a broker the test started.
pub mod kafka_clients {
    use std::{
        collections::HashMap,
        io::Read,
        path::PathBuf,
        process::{Command, Stdio},
        sync::{Arc, Mutex, OnceLock},
        time::{Duration, Instant},
    };

    use super::{missing, runs, tail, unresolved};

    /// A Maven run (a build, or a JUnit class) that takes longer has hung
    /// (each takes well under a minute).
    pub const CLASS_SECONDS_MAX: u64 = 600;
    /// How to install what a missing piece needs.
    const INSTALL: &str = "apt-get install maven openjdk-17-jdk-headless, then for each version V \
         in tools/tests/java_clients/versions: mvn -B -q -f tools/tests/java_clients/pom.xml \
         -Dkafka.clients.version=V test -DskipTests";

    /// `tests/java_clients/`.
    pub fn project_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/java_clients")
    }

    /// The kafka-clients versions tested, the newest first.
    pub fn versions() -> Vec<String> {
        let text = std::fs::read_to_string(project_dir().join("versions"))
            .expect("tests/java_clients/versions reads");
        let versions: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(str::to_string)
            .collect();
        assert!(versions.len() >= 2, "a 4.x and a 3.x version: {versions:?}");
        versions
    }

    /// The newest kafka-clients version tested (the first of `versions`).
    pub fn newest() -> String {
        versions()[0].clone()
    }

    /// What a Maven run printed, and whether it succeeded (`None`: it ran
    /// past [`CLASS_SECONDS_MAX`] and was killed).
    struct MavenRun {
        success: Option<bool>,
        output: String,
    }

    /// Runs Maven offline on the project with kafka-clients `version`.
    fn mvn(version: &str, arguments: &[String]) -> MavenRun {
        let mut child = Command::new("mvn")
            .args(["-B", "-q", "-o", "-Dstyle.color=never", "-f"])
            .arg(project_dir().join("pom.xml"))
            .arg(format!("-Dkafka.clients.version={version}"))
            .args(arguments)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("mvn: {error}"));
        let read = |mut pipe: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut text = String::new();
                let _ = pipe.read_to_string(&mut text);
                text
            })
        };
        let out = read(Box::new(child.stdout.take().unwrap()));
        let err = read(Box::new(child.stderr.take().unwrap()));
        let deadline = Instant::now() + Duration::from_secs(CLASS_SECONDS_MAX);
        let success = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status.success());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let output = format!("{}{}", out.join().unwrap(), err.join().unwrap());
        MavenRun { success, output }
    }

    /// Compiles the tests for `version`, once per test process (the tests
    /// of a version share the build); whether they can run. Java or Maven
    /// missing, or a dependency not resolved, is [`missing`]; a compile
    /// error fails.
    pub fn built(version: &str) -> bool {
        if !runs("java", "-version") {
            return missing("java is not installed", INSTALL);
        }
        if !runs("mvn", "-v") {
            return missing("mvn is not installed", INSTALL);
        }
        type Builds = Mutex<HashMap<String, Arc<OnceLock<Result<(), String>>>>>;
        static BUILDS: OnceLock<Builds> = OnceLock::new();
        let build = BUILDS
            .get_or_init(Default::default)
            .lock()
            .unwrap()
            .entry(version.to_string())
            .or_default()
            .clone();
        let result = build.get_or_init(|| {
            let run = mvn(version, &["test-compile".to_string()]);
            match run.success {
                Some(true) => Ok(()),
                _ => Err(run.output),
            }
        });
        match result {
            Ok(()) => true,
            Err(output) if unresolved(output) => missing(
                &format!(
                    "kafka-clients {version} or a Maven plugin is not in the local \
                     repository:\n{output}"
                ),
                INSTALL,
            ),
            Err(output) => {
                panic!("the JUnit tests for kafka-clients {version} do not build:\n{output}")
            }
        }
    }

    /// Runs `test`, a JUnit class of `sluice.clients` or one test of it
    /// (`Class#method`), with kafka-clients `version` against `bootstrap`
    /// and the system properties `properties` (`-Dname=value`), once
    /// [`built`]; fails with Maven's and the class's output unless every
    /// test run passes. Two runs of one class at once write the same
    /// report files: a caller that makes them holds them apart.
    pub fn run_class(version: &str, test: &str, bootstrap: &str, properties: &[String]) {
        let class = test.split('#').next().unwrap();
        let reports =
            project_dir().join(format!("target/kafka-clients-{version}/surefire-reports"));
        let client_log = reports.join(format!("sluice.clients.{class}-output.txt"));
        let summary_file = reports.join(format!("sluice.clients.{class}.txt"));
        // An earlier run's reports say nothing of this one.
        for stale in [summary_file.clone(), client_log.clone()] {
            match std::fs::remove_file(&stale) {
                Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                    panic!("removing {}: {error}", stale.display())
                }
                _ => {}
            }
        }
        let mut arguments = vec![
            "surefire:test".to_string(),
            format!("-Dtest={test}"),
            format!("-Dsluice.bootstrap={bootstrap}"),
        ];
        arguments.extend(properties.iter().cloned());
        let run = mvn(version, &arguments);
        let summary = tail(&summary_file, 20_000);
        eprintln!("{summary}");
        let verdict = match run.success {
            Some(true) => return,
            Some(false) => "failed".to_string(),
            None => format!("still ran after {CLASS_SECONDS_MAX} s"),
        };
        if unresolved(&run.output) {
            missing(
                &format!(
                    "a Maven plugin for kafka-clients {version} is not in the local \
                     repository:\n{}",
                    run.output
                ),
                INSTALL,
            );
            return;
        }
        let client_log = tail(&client_log, 20_000);
        panic!(
            "{test} with kafka-clients {version} {verdict}\n--- maven\n{}\n--- report\n\
             {summary}\n--- the client's log (its end)\n{client_log}",
            run.output
        );
    }
}
