fn main() {
    std::process::exit(outpost::cli::main());
}
