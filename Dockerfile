# sluice, built from source.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/sluice /usr/local/bin/sluice
# sluice needs no root: it reads its config and listens on unprivileged ports (5443 here).
USER 65532:65532
ENTRYPOINT ["sluice"]
