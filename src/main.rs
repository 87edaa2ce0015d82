fn main() {
    println!("mptun: not yet");
}
