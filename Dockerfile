# membersync container image: a static-enough release binary on distroless (glibc, CA
# certificates, no shell), running as a non-root user.
#   docker build -t membersync .
#   docker run --rm -e CLERK_SECRET_KEY membersync plan -f /config
FROM rust:1-slim-bookworm AS build
WORKDIR /src
# Dependencies first, for layer caching.
COPY Cargo.toml Cargo.lock ./
COPY benches ./benches
RUN mkdir src && echo 'fn main() {}' > src/main.rs && echo '' > src/lib.rs \
    && cargo build --release --locked --bin membersync 2>/dev/null || true
COPY src ./src
COPY config ./config
RUN touch src/main.rs src/lib.rs && cargo build --release --locked --bin membersync \
    && strip target/release/membersync

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/membersync /usr/local/bin/membersync
USER nonroot:nonroot
EXPOSE 9090
ENTRYPOINT ["/usr/local/bin/membersync"]
CMD ["--help"]
