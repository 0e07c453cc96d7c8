//! eddy's command-line entry point.
fn main() {
    println!("eddy");
}
