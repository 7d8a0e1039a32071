// jemalloc: the relay allocates frames on its commit thread that worker threads free;
// bench/README.md (`relay`, `idle_streams`) has the figures it was chosen on.
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() {
    std::process::exit(outpost::cli::main());
}
