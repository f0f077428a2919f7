# Sourced by scripts/test and scripts/bench: starts the shared Apache Kafka
# broker of one run (scripts/kafka/broker run, in the background, from a
# fresh temporary directory on a free loopback port), waits for it, creates
# gavel's default topics, exports GAVEL_TEST_BROKERS, and stops it when the
# calling script exits, whatever happens.
#
#   . scripts/kafka/lib.sh && start_shared_broker

kafka_log() { printf '==> %s\n' "$*" >&2; }

kafka_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

kafka_port_open() {
  python3 -c "import socket,sys; s=socket.socket(); s.settimeout(0.2); sys.exit(s.connect_ex(('127.0.0.1', $1)))" 2>/dev/null
}

# Runs a Kafka command-line tool (org.apache.kafka.tools.*) on the cached classpath.
kafka_tool() {
  local libs
  libs=$("$kafka_dir/broker" classpath)
  java -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -cp "$libs/*" "$@"
}

start_shared_broker() {
  kafka_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  command -v java >/dev/null || { kafka_log "java is not installed: the test broker is Apache Kafka"; return 1; }
  "$kafka_dir/broker" classpath >/dev/null
  local port
  port=$(kafka_free_port)
  kafka_workdir=$(mktemp -d -t gavel-kafka.XXXXXX)
  kafka_log "starting Apache Kafka on 127.0.0.1:$port in $kafka_workdir"
  "$kafka_dir/broker" run "$kafka_workdir" "$port" >"$kafka_workdir/broker.log" 2>&1 &
  kafka_pid=$!
  trap stop_shared_broker EXIT INT TERM
  for _ in $(seq 1 240); do
    kafka_port_open "$port" && break
    if ! kill -0 "$kafka_pid" 2>/dev/null; then
      kafka_log "Kafka exited early:"; cat "$kafka_workdir/broker.log" >&2; return 1
    fi
    sleep 0.25
  done
  kafka_port_open "$port" || { kafka_log "Kafka did not listen within 60 s:"; cat "$kafka_workdir/broker.log" >&2; return 1; }
  export GAVEL_TEST_BROKERS="127.0.0.1:$port"
  local topic
  for topic in marketplace.shows marketplace.bids marketplace.payments marketplace.chat marketplace.accounts \
               risk.signals risk.actions risk.verdicts risk.shadow risk.dlq; do
    kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$GAVEL_TEST_BROKERS" \
      --create --if-not-exists --topic "$topic" --partitions 4 --replication-factor 1 >/dev/null &
  done
  wait_topics=0
  for job in $(jobs -p); do
    [ "$job" = "$kafka_pid" ] && continue
    wait "$job" || wait_topics=1
  done
  [ "$wait_topics" = 0 ] || { kafka_log "creating the default topics failed"; return 1; }
  kafka_log "broker ready at $GAVEL_TEST_BROKERS"
}

stop_shared_broker() {
  if [ -n "${kafka_pid:-}" ] && kill -0 "$kafka_pid" 2>/dev/null; then
    kill "$kafka_pid" 2>/dev/null || true
    wait "$kafka_pid" 2>/dev/null || true
  fi
  [ -n "${kafka_workdir:-}" ] && rm -rf "$kafka_workdir"
  kafka_pid=""
}
