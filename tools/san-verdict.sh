#!/bin/sh
# san-verdict.sh LOG -- did a sanitizer run find anything in our code?
# Fails on any AddressSanitizer error, any UBSan "runtime error:", and any
# leak whose allocation stack has a frame in this project's sources.  A
# leak whose stack is Criterion's alone (its runner leaks a few bytes now
# and then, outside any test) is reported but does not fail the run.
set -eu
log="$1"
if grep -qE "ERROR: AddressSanitizer|runtime error:" "$log"; then
    echo "san-verdict: sanitizer errors in $log"
    exit 1
fi
awk '
    /(Direct|Indirect) leak of/ { if (inleak && ours) bad++; inleak = 1; ours = 0; next }
    inleak && /^ *#[0-9]+ / { if ($0 ~ /(engine|http|bench|fuzz)\/[a-z_\/]*\.c|test_[a-z_]*\.c/) ours = 1; next }
    inleak && /^$/ { if (ours) bad++; inleak = 0; ours = 0 }
    END { if (inleak && ours) bad++; if (bad) { print "san-verdict: " bad " leak(s) in our code"; exit 1 } }
' "$log"
if grep -q "ERROR: LeakSanitizer" "$log"; then
    echo "san-verdict: only Criterion-internal leaks (ignored)"
fi
exit 0
