//! Writes the protocol's JSON Schemas and its AsyncAPI and OpenAPI documents to `docs/api/`.

fn main() -> std::io::Result<()> {
    for (file, document) in shared::api::documents() {
        std::fs::write(format!("{}/{file}", shared::api::DIR), shared::api::render(&document))?;
        println!("wrote docs/api/{file}");
    }
    Ok(())
}
