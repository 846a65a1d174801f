//! What the log's integration tests share.

use std::future::Future;

/// Runs `body` on a new glommio executor (a log lives on one) and returns
/// what it returns; a panic inside fails the test.
pub fn run<T, F, Fut>(body: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
{
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .spawn(body)
        .expect("executor starts")
        .join()
        .expect("executor body ran")
}
