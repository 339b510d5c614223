#!/bin/sh
# tallyd -n -c FILE for the agent role (docs/config.md, `agent`): each
# mistake names file:line:column and the key, exits 2; a token is never
# echoed, neither from the file nor from a token_file; a good agent config
# exits 0 without opening a ledger or a spool.
set -eu
B=${B:-build}
TALLYD=$PWD/$B/tallyd
work=$(mktemp -d /tmp/tally-agentcfg-$$-XXXXXX)
trap 'rm -rf "$work"' EXIT
fails=0
SECRET="s3cret-token-with-20ch"

# case NAME EXPECTED_STATUS EXPECTED_MESSAGE_FRAGMENT  (config on stdin)
case_() {
	name=$1 want=$2 frag=$3
	f="$work/$name.yaml"
	cat > "$f"
	if "$TALLYD" -n -c "$f" > "$work/out" 2>&1; then got=0; else got=$?; fi
	msg=$(cat "$work/out")
	if [ "$got" -ne "$want" ]; then
		echo "FAIL $name: exit $got, expected $want: $msg"; fails=$((fails + 1)); return
	fi
	case "$msg" in
	*"$frag"*) echo "ok   $name: $msg" ;;
	*) echo "FAIL $name: message '$msg' lacks '$frag'"; fails=$((fails + 1)); return ;;
	esac
	case "$msg" in
	*"$SECRET"*|*"not-the-secret"*) echo "FAIL $name: the token is in the message"; fails=$((fails + 1)) ;;
	esac
}

case_ good 0 "good.yaml: ok" <<Y
tallyd:
  role: agent
  data_dir: $work/var-good
agent:
  aggregator: [https://agg-a.example:9464, "http://127.0.0.1:9464/"]
  token: $SECRET
  tokens:
    - {agent: sim-host-1, token: $SECRET-1}
  timeout: 5s
  send_every: 10s
  spool:
    max_bytes: 67108864
    thin_every: 2m
collectors:
  sim: {}
Y
[ ! -e "$work/var-good/spool" ] || { echo "FAIL tallyd -n made the spool directory"; fails=$((fails + 1)); }

case_ no_section 2 "no_section.yaml:2:9: key 'role': an agent needs an 'agent:' section" <<'Y'
tallyd:
  role: agent
collectors:
  sim: {}
Y
case_ no_url 2 "no_url.yaml:4:3: 'agent' needs 'aggregator'" <<'Y'
tallyd:
  role: agent
agent:
  token_file: /nonexistent
collectors:
  sim: {}
Y
case_ ftp 2 "ftp.yaml:4:15: key 'aggregator': expected an http:// or https:// URL (got 'ftp://x')" <<'Y'
tallyd:
  role: agent
agent:
  aggregator: ftp://x
collectors:
  sim: {}
Y
case_ url_space 2 "url_space.yaml:4:16: key 'aggregator': a URL is printable ASCII without spaces (character 11 is not)" <<'Y'
tallyd:
  role: agent
agent:
  aggregator: ["http://a.b c"]
collectors:
  sim: {}
Y
case_ five_urls 2 "five_urls.yaml:4:15: key 'aggregator': expected a list of 1 to 4 items (got 5)" <<'Y'
tallyd:
  role: agent
agent:
  aggregator: [http://a, http://b, http://c, http://d, http://e]
collectors:
  sim: {}
Y
case_ unknown_key 2 "unknown_key.yaml:5:3: unknown key 'tokn' in 'agent'" <<'Y'
tallyd:
  role: agent
agent:
  aggregator: http://127.0.0.1:1
  tokn: x
collectors:
  sim: {}
Y
case_ spool_key 2 "spool_key.yaml:6:5: unknown key 'max_size' in 'agent.spool'" <<'Y'
tallyd:
  role: agent
agent:
  aggregator: http://127.0.0.1:1
  spool:
    max_size: 1
collectors:
  sim: {}
Y
# a short token: its length is said, not the token
case_ short_token 2 "short_token.yaml:5:10: key 'token': a token is 16 to 512 characters (this one has 14)" <<'Y'
tallyd:
  role: agent
agent:
  aggregator: http://127.0.0.1:1
  token: not-the-secret
collectors:
  sim: {}
Y
# a token ending in a space: where, not what
printf 'tallyd:\n  role: agent\nagent:\n  aggregator: http://127.0.0.1:1\n  token: "%s "\ncollectors:\n  sim: {}\n' \
	"$SECRET" | case_ token_space 2 "token_space.yaml:5:10: key 'token': character 23 of the token is not printable ASCII (or is a space)"
case_ both_tokens 2 "both_tokens.yaml:6:15: key 'token_file': give 'token' or 'token_file', not both" <<Y
tallyd:
  role: agent
agent:
  aggregator: http://127.0.0.1:1
  token: $SECRET
  token_file: $work/tok
collectors:
  sim: {}
Y
case_ no_token_file 2 "no_token_file.yaml:5:15: key 'token_file': $work/none: No such file or directory" <<Y
tallyd:
  role: agent
agent:
  aggregator: http://127.0.0.1:1
  token_file: $work/none
collectors:
  sim: {}
Y
# a token file with a second line: the newline inside is refused, unseen
printf '%s\nnot-the-secret\n' "$SECRET" > "$work/tok2"
case_ token_file_two_lines 2 "token_file_two_lines.yaml:5:15: key 'token_file': $work/tok2: character 23 of the token is not printable ASCII" <<Y
tallyd:
  role: agent
agent:
  aggregator: http://127.0.0.1:1
  token_file: $work/tok2
collectors:
  sim: {}
Y
# one line with CRLF is fine
printf '%s\r\n' "$SECRET" > "$work/tok3"
case_ token_file_crlf 0 "ok" <<Y
tallyd:
  role: agent
agent:
  aggregator: http://127.0.0.1:1
  token_file: $work/tok3
collectors:
  sim: {}
Y
case_ tokens_twice 2 "tokens_twice.yaml:7:15: key 'agent': 'sim-host-1' has a token already" <<Y
tallyd:
  role: agent
agent:
  aggregator: http://127.0.0.1:1
  tokens:
    - {agent: sim-host-1, token: $SECRET}
    - {agent: sim-host-1, token_file: $work/tok3}
collectors:
  sim: {}
Y
case_ tokens_no_token 2 "tokens_no_token.yaml:6:7: key 'tokens': each item needs 'agent' and 'token' or 'token_file'" <<Y
tallyd:
  role: agent
agent:
  aggregator: http://127.0.0.1:1
  tokens:
    - agent: sim-host-1
collectors:
  sim: {}
Y
case_ tokens_short 2 "tokens_short.yaml:6:34: key 'token': a token is 16 to 512 characters (this one has 14)" <<Y
tallyd:
  role: agent
agent:
  aggregator: http://127.0.0.1:1
  tokens:
    - {agent: sim-host-1, token: not-the-secret}
collectors:
  sim: {}
Y
case_ ca_missing 2 "ca_missing.yaml:5:12: key 'ca_file': $work/ca.pem: No such file or directory" <<Y
tallyd:
  role: agent
agent:
  aggregator: https://agg:1
  ca_file: $work/ca.pem
collectors:
  sim: {}
Y
touch "$work/ca.pem" "$work/key.pem"
case_ tls_on_http 2 "tls_on_http.yaml:5:12: key 'ca_file': TLS files, but no https:// aggregator URL" <<Y
tallyd:
  role: agent
agent:
  aggregator: http://agg:1
  ca_file: $work/ca.pem
collectors:
  sim: {}
Y
case_ key_alone 2 "key_alone.yaml:5:13: key 'key_file': a client key needs its 'cert_file'" <<Y
tallyd:
  role: agent
agent:
  aggregator: https://agg:1
  key_file: $work/key.pem
collectors:
  sim: {}
Y
case_ backoff 2 "backoff.yaml:6:16: key 'backoff_max': backoff_max is shorter than backoff_min" <<'Y'
tallyd:
  role: agent
agent:
  aggregator: http://agg:1
  backoff_min: 10s
  backoff_max: 5s
collectors:
  sim: {}
Y
case_ frames 2 "frames.yaml:5:15: key 'max_frames': 2000 is out of range 1..1024" <<'Y'
tallyd:
  role: agent
agent:
  aggregator: http://agg:1
  max_frames: 2000
collectors:
  sim: {}
Y
case_ send_every_long 2 "send_every_long.yaml:5:15: key 'send_every': 2h is out of range 0s..3600s" <<'Y'
tallyd:
  role: agent
agent:
  aggregator: http://agg:1
  send_every: 2h
collectors:
  sim: {}
Y
case_ send_every_count 2 "send_every_count.yaml:5:15: key 'send_every': expected a duration like 10s (got '10 cycles')" <<'Y'
tallyd:
  role: agent
agent:
  aggregator: http://agg:1
  send_every: 10 cycles
collectors:
  sim: {}
Y
case_ thin_over_max 2 "thin_over_max.yaml:7:20: key 'thin_at_bytes': 3000000 is out of range 1..2097152" <<'Y'
tallyd:
  role: agent
agent:
  aggregator: http://agg:1
  spool:
    max_bytes: 2097152
    thin_at_bytes: 3000000
collectors:
  sim: {}
Y
case_ full_every 2 "full_every.yaml:7:17: key 'full_every': shorter than 'thin_every'" <<'Y'
tallyd:
  role: agent
agent:
  aggregator: http://agg:1
  spool:
    thin_every: 10m
    full_every: 5m
collectors:
  sim: {}
Y
case_ agent_ledger 2 "agent_ledger.yaml:5:1: 'ledger': an agent keeps no ledger and no RRD files (the aggregator does): remove the section" <<'Y'
tallyd:
  role: agent
agent:
  aggregator: http://agg:1
ledger:
  commit_every: 1s
collectors:
  sim: {}
Y
case_ agent_rules 2 "agent_rules.yaml:6:10: key 'rules': alert rules run on the aggregator" <<'Y'
tallyd:
  role: agent
agent:
  aggregator: http://agg:1
alerts:
  rules: [{name: Hot, meter: cpu, rate_above: 1}]
collectors:
  sim: {}
Y
case_ section_all_in_one 2 "section_all_in_one.yaml:3:1: 'agent' is the section of 'role: agent' (this tallyd is all-in-one)" <<'Y'
tallyd:
  interval: 10s
agent:
  aggregator: http://agg:1
collectors:
  sim: {}
Y
# an aggregator meters nothing itself: its host gets an agent beside it
case_ aggregator_collectors 2 "aggregator_collectors.yaml:3:1: 'collectors': an aggregator runs none" <<'Y'
tallyd:
  role: aggregator
collectors:
  sim: {}
Y

[ "$fails" -eq 0 ] || { echo "$fails failed"; exit 1; }
echo "all agent config cases passed"
