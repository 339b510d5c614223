# Shell helpers for the tests that post usage events to a tallyd
# (POST /api/v1/events, schemas/events-api.md; sourced, POSIX sh). The
# caller sets $work and $URL (the route's URL) and sources tests/lib/cli.sh.

# ev_post TOKEN JSON: POST JSON with TOKEN ("" for none): the status in
# $code, the body in $work/resp, the head in $work/head
ev_post() {
	printf '%s' "$2" > "$work/req.json"
	set -- "$1"
	code=$(curl -sS -o "$work/resp" -D "$work/head" -w '%{http_code}' -X POST \
		${1:+-H "Authorization: Bearer $1"} -H 'Content-Type: application/json' \
		--data-binary @"$work/req.json" "$URL")
}

# ev_want CODE WHAT [JQ-FILTER EXPECTED]: the last answer's status and,
# when given, a field of its body (counts a FAIL)
ev_want() {
	if [ "$code" = "$1" ] && { [ $# -lt 4 ] || [ "$(jq -r "$3" "$work/resp")" = "$4" ]; }; then
		ok "$2: $code $(head -c 200 "$work/resp")"
	else
		bad "$2: $code (want $1${4:+, $3 = $4}): $(head -c 300 "$work/resp")"
	fi
}

# ev ID TENANT RESOURCE METER TIME QUANTITY [END]: one event (QUANTITY as
# JSON: 5, '"5"', 1.5)
ev() {
	printf '{"id": "%s", "tenant": "%s", "resource": "%s", "meter": "%s", "time": "%s", "quantity": %s%s}' \
		"$1" "$2" "$3" "$4" "$5" "$6" "${7:+, \"end\": \"$7\"}"
}

# The custom meters of both tests (a config's `meters:` section), and
# ev_plan FILE: the plan that prices them, EUR: 0.10 a GiB-month of
# object storage, 0.40 a thousand API calls.
EV_METERS='meters:
  - {name: storage.objects.size, kind: gauge, unit: B, title: Object storage}
  - {name: api.calls, kind: counter, unit: request, title: API calls}'
ev_plan() {
	cat > "$1" <<'EOP'
plan: ev
currency: EUR
versions:
  - from: 2026-01-01
    prices:
      - {meter: storage.objects.size, unit: GiB-month, price: 0.10}
      - {meter: api.calls, unit: request-thousand, price: 0.40}
EOP
}

# The three events whose October invoice both tests work out by hand:
# s1, 31 GiB (33285996544 B) held 10 of October's 31 days: 31 x 10 / 31 =
# 10 GiB-month x 0.10 = 1.00; c1, 1000 calls over 00:30-03:00 split by
# cumulative floor 200 / 400 / 400; c2, 2500 calls given as a string.
EV_S1=$(ev s1 acme bucket:acme-backups storage.objects.size 2026-10-01T00:00:00Z 33285996544 2026-10-11T00:00:00Z)
EV_C1=$(ev c1 acme api:acme api.calls 2026-10-02T00:30:00Z 1000 2026-10-02T03:00:00Z)
EV_C2=$(ev c2 acme api:acme api.calls 2026-10-05T10:00:00Z '"2500"')
