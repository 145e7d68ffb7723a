//! Rebuilds the server when the console's built assets change (they are embedded, and a
//! build that started before they existed would otherwise never see them).
fn main() {
    println!("cargo:rerun-if-changed=../../console/dist");
}
