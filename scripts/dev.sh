#!/usr/bin/env bash
# The two commands of the README.
#
#   scripts/dev.sh run    the whole system on this machine: gateway on :8000 (PORT to change)
#   scripts/dev.sh test   every test
#   scripts/dev.sh bench  the benchmark table (README, "Benchmarks")
#   scripts/dev.sh api    docs/api (schemas, AsyncAPI, OpenAPI) and the JS client's types, from the protocol's code
#
# When DATABASE_URL / REDIS_URL are not set, private Postgres and Redis instances are started
# from Debian's packages (installed first when missing) and stopped again on exit.
set -euo pipefail

mode=${1:-}
case "$mode" in run | test | bench | api) ;; *) echo "usage: $0 run|test|bench|api" >&2; exit 2 ;; esac
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

apt_install() {
    if [ "$(id -u)" != 0 ]; then
        echo "missing $*: install them (apt-get install $*) or run as root" >&2
        exit 1
    fi
    say "installing $*"
    if [ -z "${apt_updated:-}" ]; then apt-get update -qq; apt_updated=1; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

require_toolchain() {
    if ! command -v cargo >/dev/null; then
        echo "cargo not found: install Rust (https://rustup.rs) and run this again" >&2
        exit 1
    fi
    command -v cc >/dev/null || apt_install gcc libc6-dev
}

# A port nothing listens on, below the kernel's ephemeral range (as is the port 10000 above it, a
# cluster node's bus): a port an outgoing connection holds cannot be bound, and a listen check
# does not see it.
free_port() {
    local port low
    low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
    for _ in $(seq 1 200); do
        port=$((10000 + RANDOM % (low - 20000)))
        if ! (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return
        fi
    done
    echo "no free port found" >&2
    exit 1
}

# Private instances live outside the work tree so the postgres user can reach them.
state="${TMPDIR:-/tmp}/chat-backend-$(id -u)-$(echo "$root" | cksum | cut -d' ' -f1)/$mode"
cleanup=()
on_exit() {
    local i
    for ((i = ${#cleanup[@]} - 1; i >= 0; i--)); do eval "${cleanup[$i]}" || true; done
}
trap on_exit EXIT
trap 'exit 130' INT TERM

as_postgres() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# A private Postgres in $state/NAME, with more server options if given; sets pg_port.
start_postgres() {
    local name=$1 extra=${2:-} bin
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
        apt_install postgresql
        bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    fi
    command -v psql >/dev/null || apt_install postgresql-client
    local dir="$state/$name" port
    port=$([ "$mode" = run ] && echo "${PG_PORT:-55432}" || free_port)
    mkdir -p "$state"
    [ "$mode" != run ] && rm -rf "$dir"
    if [ ! -s "$dir/PG_VERSION" ]; then
        say "initializing a private Postgres in $dir"
        mkdir -p "$dir"
        [ "$(id -u)" = 0 ] && chown postgres: "$state" "$dir"
        as_postgres "$bin/initdb" -D "$dir" -U postgres --auth=trust -E UTF8 --no-sync >/dev/null
    fi
    # Tests trade durability for speed; the local system keeps Postgres' defaults.
    local opts="-p $port -k $dir -c listen_addresses=127.0.0.1 $extra"
    [ "$mode" = test ] && opts="$opts -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
    say "starting Postgres on 127.0.0.1:$port"
    as_postgres "$bin/pg_ctl" -D "$dir" -o "$opts" -l "$dir/server.log" -w start >/dev/null
    cleanup+=("as_postgres '$bin/pg_ctl' -D '$dir' -m fast -w stop >/dev/null")
    psql -h 127.0.0.1 -p "$port" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'chat'" | grep -q 1 ||
        psql -h 127.0.0.1 -p "$port" -U postgres -qc "CREATE DATABASE chat"
    pg_port=$port
}

start_redis() {
    command -v redis-server >/dev/null || apt_install redis-server
    local port
    port=$([ "$mode" = run ] && echo "${REDIS_PORT:-56379}" || free_port)
    mkdir -p "$state/redis"
    say "starting Redis on 127.0.0.1:$port"
    redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes \
        --dir "$state/redis" --pidfile "$state/redis/redis.pid" --logfile "$state/redis/redis.log"
    cleanup+=("redis-cli -p $port shutdown nosave >/dev/null 2>&1")
    for _ in $(seq 1 100); do
        redis-cli -p "$port" ping >/dev/null 2>&1 && break
        sleep 0.1
    done
    export REDIS_URL="redis://127.0.0.1:$port"
}

# A private Redis Cluster of three masters, for the suites that run against both kinds of Redis.
start_redis_cluster() {
    command -v redis-server >/dev/null || apt_install redis-server
    local port nodes=() first=""
    for _ in 1 2 3; do
        port=$(free_port)
        while (echo >"/dev/tcp/127.0.0.1/$((port + 10000))") 2>/dev/null; do port=$(free_port); done
        mkdir -p "$state/cluster/$port"
        redis-server --port "$port" --bind 127.0.0.1 --cluster-enabled yes --save "" --appendonly no \
            --cluster-config-file "$state/cluster/$port/nodes.conf" --daemonize yes --dir "$state/cluster/$port" \
            --pidfile "$state/cluster/$port/redis.pid" --logfile "$state/cluster/$port/redis.log"
        cleanup+=("redis-cli -p $port shutdown nosave >/dev/null 2>&1")
        for _ in $(seq 1 100); do
            redis-cli -p "$port" ping >/dev/null 2>&1 && break
            sleep 0.1
        done
        nodes+=("127.0.0.1:$port")
        first=${first:-$port}
    done
    say "joining a Redis Cluster of ${nodes[*]}"
    redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes >/dev/null
    for _ in $(seq 1 100); do
        redis-cli -p "$first" cluster info | grep -q cluster_state:ok && break
        sleep 0.1
    done
    redis_cluster_url="redis+cluster://$(IFS=,; echo "${nodes[*]}")"
}

# PgBouncer in transaction mode in front of DATABASE_URL's server, as RDS Proxy stands in front of
# RDS: a client's transaction (or statement outside one) borrows one of the POOL server connections
# of its database and gives it back when it ends. Sets pgbouncer_port.
start_pgbouncer() {
    local pool=$1 dir="$state/pgbouncer" server port bin
    bin=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)
    [ -x "$bin" ] || { apt_install pgbouncer; bin=/usr/sbin/pgbouncer; }
    server=${DATABASE_URL#*://}
    server=${server#*@}
    server=${server%%/*}
    port=$(free_port)
    rm -rf "$dir"
    mkdir -p "$dir"
    # Every database (the tests create one each) through the one user the tests connect as.
    cat >"$dir/pgbouncer.ini" <<EOT
[databases]
* = host=${server%:*} port=${server##*:} user=postgres
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = any
pool_mode = transaction
default_pool_size = $pool
max_client_conn = 1000
; Every test has a database of its own, so a pool each: all of them together stay within a few
; pools' worth, idle server connections closing soon to make room for the next test's.
max_user_connections = $((pool * 4))
server_idle_timeout = 5
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
EOT
    # PgBouncer will not run as root.
    [ "$(id -u)" = 0 ] && chown -R postgres: "$dir"
    say "starting PgBouncer (transaction mode, $pool server connections per database) on 127.0.0.1:$port"
    as_postgres "$bin" -d "$dir/pgbouncer.ini"
    cleanup+=("kill \$(cat '$dir/pgbouncer.pid')")
    for _ in $(seq 1 100); do
        (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.1
    done
    pgbouncer_port=$port
}

# A throw-away CA ($tls/ca.pem) and a server certificate it signed for localhost and 127.0.0.1,
# for the TLS servers of the test command.
make_certs() {
    command -v openssl >/dev/null || apt_install openssl
    tls="$state/tls"
    rm -rf "$tls"
    mkdir -p "$tls"
    local ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
    openssl req -x509 "${ec[@]}" -days 2 -subj "/CN=chat-backend test CA" -keyout "$tls/ca.key" -out "$tls/ca.pem" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
    openssl req "${ec[@]}" -subj "/CN=localhost" -keyout "$tls/server.key" -out "$tls/server.csr" 2>/dev/null
    printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1" "basicConstraints=critical,CA:FALSE" \
        "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" >"$tls/server.ext"
    openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" -CAcreateserial -days 2 \
        -extfile "$tls/server.ext" -out "$tls/server.pem" 2>/dev/null
    # Postgres wants its key private to the user it runs as.
    chmod 600 "$tls/server.key"
    if [ "$(id -u)" = 0 ]; then chown postgres: "$tls/server.key"; fi
}

# A private Redis that listens on TLS only, with make_certs' certificate; with "cluster", a
# one-node Redis Cluster holding every slot (its bus on TLS too). Sets tls_redis_port.
start_redis_tls() {
    local kind=$1 port dir extra=()
    command -v redis-server >/dev/null || apt_install redis-server
    port=$(free_port)
    while [ "$kind" = cluster ] && (echo >"/dev/tcp/127.0.0.1/$((port + 10000))") 2>/dev/null; do port=$(free_port); done
    dir="$state/redis-tls-$kind"
    rm -rf "$dir"
    mkdir -p "$dir"
    [ "$kind" = cluster ] && extra=(--cluster-enabled yes --tls-cluster yes --cluster-announce-ip 127.0.0.1
        --cluster-config-file "$dir/nodes.conf")
    say "starting a TLS Redis ($kind) on 127.0.0.1:$port"
    redis-server --port 0 --tls-port "$port" --bind 127.0.0.1 --tls-cert-file "$tls/server.pem" \
        --tls-key-file "$tls/server.key" --tls-ca-cert-file "$tls/ca.pem" --tls-auth-clients no --save "" \
        --appendonly no --daemonize yes --dir "$dir" --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" "${extra[@]}"
    local cli=(redis-cli --tls --cacert "$tls/ca.pem" -p "$port")
    cleanup+=("redis-cli --tls --cacert '$tls/ca.pem' -p $port shutdown nosave >/dev/null 2>&1")
    for _ in $(seq 1 100); do
        "${cli[@]}" ping >/dev/null 2>&1 && break
        sleep 0.1
    done
    if [ "$kind" = cluster ]; then
        "${cli[@]}" cluster addslotsrange 0 16383 >/dev/null
        for _ in $(seq 1 100); do
            "${cli[@]}" cluster info | grep -q cluster_state:ok && break
            sleep 0.1
        done
    fi
    tls_redis_port=$port
}

# Python tools from PyPI (cfn-lint, moto's S3 server) in a private virtual environment.
venv="${state%/*}/venv"
pip_tool() {
    local tool=$1 package=$2
    if [ ! -x "$venv/bin/$tool" ]; then
        python3 -m venv --help >/dev/null 2>&1 || apt_install python3 python3-venv
        [ -x "$venv/bin/pip" ] || python3 -m venv "$venv"
        say "installing $package into $venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check "$package"
    fi
}

cfn_lint() {
    if command -v cfn-lint >/dev/null; then
        cfn-lint "$@"
        return
    fi
    pip_tool cfn-lint cfn-lint
    "$venv/bin/cfn-lint" "$@"
}

# A local server of S3 and SQS (moto) for the archive and webhook tests.
start_s3() {
    pip_tool moto_server "moto[server]"
    local port
    port=$(free_port)
    mkdir -p "$state"
    "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$state/moto.log" 2>&1 &
    cleanup+=("kill $!")
    for _ in $(seq 1 100); do
        (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.1
    done
    say "local S3 (moto) on 127.0.0.1:$port"
    export S3_ENDPOINT="http://127.0.0.1:$port"
}

require_toolchain
if [ "$mode" = api ]; then
    say "writing docs/api from the protocol's types"
    cargo run -q --locked -p shared --bin api-docs
    say "generating clients/js/src/protocol.ts from docs/api/protocol.schema.json"
    command -v npm >/dev/null || apt_install nodejs npm
    (cd clients/js && npm ci --no-audit --no-fund --loglevel=error && npm run --silent generate)
    exit 0
fi
if [ -z "${DATABASE_URL:-}" ]; then
    start_postgres postgres
    export DATABASE_URL="postgres://postgres@127.0.0.1:$pg_port/chat"
else
    say "using DATABASE_URL from the environment"
fi
if [ -z "${REDIS_URL:-}" ]; then start_redis; else say "using REDIS_URL from the environment"; fi
export JWT_SECRET_KEY="${JWT_SECRET_KEY:-local-dev-secret-change-me}"

case "$mode" in
run)
    say "building"
    command -v npm >/dev/null || apt_install nodejs npm
    (cd clients/js && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build)
    cargo build --release -p gateway
    gw=target/release/local-gateway
    "$gw" migrate
    port="${PORT:-8000}"
    cat <<EOT

Chat backend running. Open the web chat at http://127.0.0.1:$port/ (sign in as anyone), or
connect a client to:
    ws://127.0.0.1:$port/api/v1/ws/chat?token=TOKEN
Mint a development token (same secret as the server):
    JWT_SECRET_KEY='$JWT_SECRET_KEY' $root/$gw token --tenant acme --user alice --name Alice
For example, with wscat (npm i -g wscat):
    wscat -c "ws://127.0.0.1:$port/api/v1/ws/chat?token=\$(JWT_SECRET_KEY='$JWT_SECRET_KEY' $root/$gw token --user alice)"
Postgres: $DATABASE_URL   Redis: $REDIS_URL   (Ctrl-C stops everything)

EOT
    # Development tokens for the web page's sign-in, webhooks to a receiver on this machine;
    # a deployment sets neither.
    DEV_TOKENS=1 WEBHOOK_ALLOW_HTTP="${WEBHOOK_ALLOW_HTTP:-1}" "$gw" serve --host "${HOST:-127.0.0.1}" --port "$port"
    ;;
bench)
    say "building release binaries with symbols (the profiling profile)"
    cargo build --profile profiling --workspace --bins --locked
    command -v redis-benchmark >/dev/null || apt_install redis-tools
    ls /usr/lib/postgresql/*/bin/pgbench >/dev/null 2>&1 || apt_install postgresql
    command -v npm >/dev/null || apt_install nodejs npm
    say "installing the Socket.IO peer (bench/socketio)"
    (cd bench/socketio && npm ci --no-audit --no-fund --loglevel=error)
    # Ten thousand client sockets and as many server sockets.
    ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
    say "benchmarking (a few minutes)"
    target/profiling/bench | tee target/bench.txt
    ;;
test)
    # The contract recorder of the Rust suites writes here (tests/src/contract.rs).
    rm -rf target/contract
    say "linting template.yaml"
    cfn_lint template.yaml
    start_s3
    say "building the functions (the Lambda tests run the real binaries)"
    cargo build --workspace --bins --locked
    say "running all tests"
    # --show-output prints what passing tests report, such as the functions' cold starts.
    RUST_LOG="${RUST_LOG:-warn}" cargo test --workspace --locked -- --show-output
    say "running the main suites again with posts through the real SDK client (as on AWS), every room fanned out as a big one"
    GATEWAY_DELIVERY=sdk FANOUT_MEMBER_LIST_MAX=0 RUST_LOG="${RUST_LOG:-warn}" cargo test --locked -p integration-tests \
        --test foundation --test features
    start_redis_cluster
    say "running the Redis-backed suites again, against the Redis Cluster, each connection's frames one at a time"
    REDIS_URL="$redis_cluster_url" GATEWAY_FRAME_CONCURRENCY=1 RUST_LOG="${RUST_LOG:-warn}" cargo test --locked -p integration-tests \
        --test foundation --test features --test abuse --test http_api
    start_pgbouncer 10
    say "running the main suites again through PgBouncer in transaction mode (as behind RDS Proxy), statements unnamed"
    DIRECT_DATABASE_URL="$DATABASE_URL" DATABASE_URL="postgres://postgres@127.0.0.1:$pgbouncer_port/chat" \
        DB_STATEMENTS=unnamed POOLER_POOL_SIZE=10 RUST_LOG="${RUST_LOG:-warn}" cargo test --locked -p integration-tests \
        --test foundation --test features --test pooler -- --show-output
    # As on AWS (RDS forces TLS, ElastiCache with in-transit encryption): nothing in the clear.
    make_certs
    printf '%s\n' "hostssl all all 127.0.0.1/32 trust" "hostssl all all ::1/128 trust" >"$tls/pg_hba.conf"
    start_postgres postgres-tls "-c ssl=on -c ssl_cert_file=$tls/server.pem -c ssl_key_file=$tls/server.key \
        -c hba_file=$tls/pg_hba.conf"
    tls_database_url="postgres://postgres@localhost:$pg_port/chat?sslmode=verify-full&sslrootcert=$tls/ca.pem"
    start_redis_tls single
    tls_redis_url="rediss://localhost:$tls_redis_port"
    start_redis_tls cluster
    say "running the suites again over TLS only (Postgres with hostssl alone, verify-full; Redis on TLS)"
    DATABASE_URL="$tls_database_url" TLS_DATABASE_URL="$tls_database_url" REDIS_URL="$tls_redis_url" \
        TLS_REDIS_URL="$tls_redis_url" TLS_REDIS_CLUSTER_URL="rediss+cluster://localhost:$tls_redis_port" \
        REDIS_CA_FILE="$tls/ca.pem" RUST_LOG="${RUST_LOG:-warn}" \
        cargo test --locked -p integration-tests --test foundation --test features --test tls -- --show-output
    say "testing the JavaScript client and the web page (Node, headless Chromium)"
    command -v npm >/dev/null || apt_install nodejs npm
    [ -x "${CHROMIUM:-/usr/bin/chromium}" ] || apt_install chromium
    # Without it emoji are empty boxes in the page and its screenshots.
    fc-list 'Noto Color Emoji' 2>/dev/null | grep -q . || apt_install fonts-noto-color-emoji
    (cd clients/js && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build && npm test)
    say "the contract: which of the protocol's frame types the suites checked against the schemas"
    cargo run -q --locked -p integration-tests --bin contract
    ;;
esac
