//! The `sluice` binary; everything lives in the library.

/// mimalloc: large reloads allocate and free hundreds of thousands of small objects, where
/// it is markedly faster than the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    sluice::cli::main()
}
