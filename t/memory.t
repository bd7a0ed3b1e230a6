# memory.t -- a hostile body costs a child little memory, whatever its
# shape: each 6 MB body below (a pad array of zeros, nested arrays, many
# small objects, many unknown keys, huge strings where nobody asked for
# one, long arrays inside operations, a control byte that cJSON would
# skip as whitespace, chunked bodies without a Content-Length) is refused with 400 or 413 and a JSON error naming the
# field or limit, stores nothing, and raises the peak resident set
# (VmHWM) of the child that read it by less than 32 MiB.  Each is sent on
# a fresh connection to a fresh child (prefork, MaxConnectionsPerChild 1)
# after a warm-up request on that connection names the child
# (X-KVLSM-Pid); the peak is reset (clear_refs) just before the body.
#
# Then KVLSMMaxInflight: one child (event, 16 threads) allowed 16 MiB of
# bodies at once is sent ten 4 MB batches, each held half-sent: the four
# that fit are admitted and wait for the rest of their bodies, the six
# others get 503 with Retry-After at once, and so does a chunked body
# while the four are held; the four then complete, nothing refused was
# stored, the child lives on, and a refused batch sent again succeeds.
#
# The new directives sit in <IfDirective> so that this file also runs
# (and fails) against a build from before them.
use strict;
use warnings FATAL => 'all';
use Apache::Test;
use Apache::TestUtil;
use KVTest;
use Time::HiRes qw(time);

$SIG{PIPE} = 'IGNORE';
my $MiB = 1024 * 1024;
my $SIZE = 6_000_000;
my $BUDGET = 32 * $MiB;

# ~6 MB: head, then unit repeated, then tail.
sub fill {
    my ($head, $unit, $tail) = @_;
    my $n = int(($SIZE - length($head) - length($tail)) / length($unit));
    return $head . ($unit x $n) . $tail;
}
my $deep = ('[' x 500) . (']' x 500) . ',';
my @shapes = (
    [ 'pad array of zeros', '/batch', 'm/pad', 0,
      fill('{"ops":[{"op":"set","key":"m/pad","value":"v"}],"pad":[', '0,', '0]}'),
      qr/unknown field "pad"/ ],
    [ 'nested arrays, 500 deep, repeated', '/batch', 'm/deep', 0,
      fill('{"ops":[{"op":"set","key":"m/deep","value":"v"}],"pad":[', $deep, '0]}'),
      qr/unknown field "pad"/ ],
    [ 'nesting 3M deep in an unknown field', '/set', 'm/nest', 0,
      '{"key":"m/nest","value":"v","x":' . ('[' x 2_999_950) . (']' x 2_999_950) . '}',
      qr/unknown field "x"/ ],
    [ 'nesting 3M deep as the value', '/set', 'm/nestv', 0,
      '{"key":"m/nestv","value":' . ('[' x 2_999_950) . (']' x 2_999_950) . '}',
      qr/value must be a string/ ],
    [ 'many small objects (150,000 ops)', '/batch', 'm/obj', 0,
      fill('{"ops":[', '{"op":"set","key":"m/obj","value":"v"},', '{"op":"del","key":"m/x"}]}'),
      qr/too many ops: at most 1000/ ],
    [ 'many unknown keys', '/set', 'm/unk', 0,
      fill('{"key":"m/unk","value":"v",', '"a":0,', '"b":0}'),
      qr/unknown field "a"/ ],
    [ 'a known field repeated', '/set', 'm/dup', 0,
      fill('{"key":"m/dup","value":"v",', '"ttl":9,', '"ttl":9}'),
      qr/duplicate field "ttl"/ ],
    [ 'huge string in an unknown field', '/set', 'm/str', 0,
      fill('{"key":"m/str","value":"v","junk":"', 'x', '"}'),
      qr/unknown field "junk"/ ],
    [ 'long array inside an op', '/batch', 'm/arr', 0,
      fill('{"ops":[{"op":"set","key":"m/arr","value":"v","x":[', '0,', '0]}]}'),
      qr/ops\[0\]: unknown field "x"/ ],
    [ 'long array as an op', '/batch', 'm/arr2', 0,
      fill('{"ops":[{"op":"set","key":"m/arr2","value":"v"},[', '0,', '0]]}'),
      qr/ops\[1\]: must be an object/ ],
    [ 'huge string in an op', '/batch', 'm/opstr', 0,
      fill('{"ops":[{"op":"set","key":"m/opstr","value":"v","note":"', 'x', '"}]}'),
      qr/ops\[0\]: unknown field "note"/ ],
    [ 'pad array after a control byte', '/batch', 'm/ctl', 0,
      fill(qq(\x07{"ops":[{"op":"set","key":"m/ctl","value":"v"}],"pad":[), '0,', '0]}'),
      qr/invalid JSON/ ],
    [ 'pad array of zeros, chunked', '/batch', 'm/cpad', 1,
      fill('{"ops":[{"op":"set","key":"m/cpad","value":"v"}],"pad":[', '0,', '0]}'),
      qr/unknown field "pad"/ ],
    [ 'unknown field in /set, chunked', '/set', 'm/cunk', 1,
      fill('{"key":"m/cunk","value":"v","pad":[', '0,', '0]}'),
      qr/unknown field "pad"/ ],
);

plan tests => 5 * @shapes + 2 + 16;

my $inst = start_apache(mpm => 'prefork', servers => 2, extra => <<'CONF');
MaxConnectionsPerChild 1
<IfDirective KVLSMMaxBatchSize>
    KVLSMMaxBatchSize 8M
</IfDirective>
CONF

ok t_cmp(req(POST => "$inst->{url}/set", '{"key":"m/guard","value":"safe"}')->code, 200, 'guard stored');

# Reset the child's peak to what it holds now (Linux 4.0+); 0 if refused.
sub reset_peak {
    my $pid = shift;
    open my $fh, '>', "/proc/$pid/clear_refs" or return 0;
    print $fh "5\n";
    return close($fh) ? 1 : 0;
}

my @table;
for my $sh (@shapes) {
    my ($name, $path, $key, $chunked, $body, $want) = @$sh;
    my $s = raw_connect($inst->{port});
    raw_write($s, raw_request(GET => '/get?key=m/warm-up'));
    my $w = raw_read($s, 30);
    my $pid = $w && $w->{h}{'x-kvlsm-pid'};
    die "no warm-up answer for '$name'" unless $pid;
    my $reset = reset_peak($pid);
    my $before = proc_status($pid, 'VmHWM');
    my $t0 = time;
    raw_write($s, raw_request(POST => $path, $body, chunked => $chunked), 120);
    my $res = raw_read($s, 120);
    my $after = proc_status($pid, 'VmHWM');
    close $s;
    my $code = $res ? $res->{code} : 'none';
    my $j = $res ? eval { JSON::PP->new->utf8->decode($res->{body}) } : undef;
    my $growth = defined $before && defined $after ? $after - $before : undef;
    push @table, sprintf('%-38s %-4s %s VmHWM %7.1f -> %7.1f MiB (+%.1f) in %.1f s%s',
                         $name, $path, $code, ($before // 0) / $MiB, ($after // 0) / $MiB,
                         ($growth // 0) / $MiB, time - $t0, $reset ? '' : ' (peak not reset)');
    ok t_cmp($code, qr/^(400|413)$/, "$name: refused");
    ok t_cmp($j && $j->{error}, $want, "$name: the error names it");
    ok t_cmp(defined $growth ? 1 : 0, 1, "$name: child $pid measured");
    ok t_cmp(($growth // $BUDGET) < $BUDGET ? 1 : 0, 1,
             sprintf('%s: peak RSS grew by %.1f MiB, under 32', $name, ($growth // 0) / $MiB));
    ok t_cmp(req(GET => "$inst->{url}/get?key=$key")->code, 404, "$name: nothing stored");
}
print "# $_\n" for @table;
my $g = req(GET => "$inst->{url}/get?key=m/guard");
ok t_cmp($g->code . ' ' . ((json_of($g) || {})->{value} // ''), '200 safe', 'nothing lost');
stop_apache($inst);

# ---- KVLSMMaxInflight ----------------------------------------------------
$inst = start_apache(mpm => 'event', servers => 1, extra => <<'CONF');
ServerLimit 1
ThreadsPerChild 16
MaxRequestWorkers 16
<IfDirective KVLSMMaxInflight>
    KVLSMMaxInflight 16M
</IfDirective>
CONF
my $val = 'v' x 999_000;
sub batch_of {
    my $i = shift;
    return '{"ops":[' . join(',', map { qq({"op":"set","key":"m/c$i/$_","value":"$val"}) } 1 .. 4) . ']}';
}
my $probe = raw_connect($inst->{port});
raw_write($probe, raw_request(GET => '/get?key=m/none'));
my $pr = raw_read($probe, 30);
my $pid = $pr && $pr->{h}{'x-kvlsm-pid'};
die 'no answer from the event child' unless $pid;
my $hwm0 = proc_status($pid, 'VmHWM');

my (@socks, @answers);
my $half = 1_000_000;
for my $i (0 .. 9) {
    my $s = raw_connect($inst->{port});
    my $all = raw_request(POST => '/batch', batch_of($i));
    raw_write($s, substr($all, 0, $half), 30);
    push @socks, { i => $i, s => $s, rest => substr($all, $half) };
}
# Six answers come while their bodies are half sent; the four admitted
# wait for theirs (bounded wait).
my $deadline = time + 30;
my @held = @socks;
while (@answers < 6 && time < $deadline) {
    my $rin = '';
    vec($rin, fileno $_->{s}, 1) = 1 for @held;
    next unless select(my $rout = $rin, undef, undef, 0.5) > 0;
    my @ready = map { $_ } grep { vec($rout, fileno $_->{s}, 1) } @held;
    for my $c (@ready) {
        push @answers, { i => $c->{i}, res => raw_read($c->{s}, 10) };
    }
    my %gone = map { $_->{i} => 1 } @ready;
    @held = grep { !$gone{ $_->{i} } } @held;
}
ok t_cmp(scalar(@answers), 6, 'six of ten 4 MB bodies answered while half sent (16 MiB in flight)');
ok t_cmp(join(',', map { $_->{res} ? $_->{res}{code} : 'none' } @answers), '503,503,503,503,503,503',
         'each with 503');
ok t_cmp(join(',', map { $_->{res} ? $_->{res}{h}{'retry-after'} // '' : '' } @answers), '1,1,1,1,1,1',
         'and Retry-After: 1');
my $j0 = @answers && $answers[0]{res} ? eval { JSON::PP->new->decode($answers[0]{res}{body}) } : undef;
ok t_cmp($j0 && $j0->{error}, qr/KVLSMMaxInflight/, 'the error names the limit');

# A chunked body while the four are held: refused as its chunks arrive.
my $cs = raw_connect($inst->{port});
raw_write($cs, raw_request(POST => '/batch', batch_of(10), chunked => 1), 30);
my $cres = raw_read($cs, 30);
close $cs;
ok t_cmp(($cres ? $cres->{code} : 'none') . ' ' . ($cres ? $cres->{h}{'retry-after'} // '' : ''), '503 1',
         'a chunked body beyond the limit: 503 with Retry-After');

# The held ones complete.
my @done;
for my $c (@held) {
    raw_write($c->{s}, $c->{rest}, 30);
    my $res = raw_read($c->{s}, 60);
    push @done, { i => $c->{i}, res => $res };
}
close $_->{s} for @socks;
ok t_cmp(join(',', map { $_->{res} ? $_->{res}{code} : 'none' } @done), '200,200,200,200',
         'the four admitted complete');
my ($wrong, $missing) = (0, 0);
my %admitted = map { $_->{i} => 1 } @done;
for my $i (0 .. 10) {
    for my $k (1 .. 4) {
        my $r = req(GET => "$inst->{url}/get?key=m/c$i/$k");
        if ($admitted{$i}) {
            $missing++ unless $r->code == 200 && length((json_of($r) || {})->{value} // '') == 999_000;
        }
        else {
            $wrong++ unless $r->code == 404;
        }
    }
}
ok t_cmp($missing, 0, 'every admitted batch stored whole');
ok t_cmp($wrong, 0, 'nothing of a refused body stored');

close $probe;
# One child (ServerLimit 1): whoever answers now is it, if it lived.
ok t_cmp(req(GET => "$inst->{url}/get?key=m/none")->header('X-KVLSM-Pid') // 'none', $pid,
         'the same child answers afterwards');
my $hwm1 = proc_status($pid, 'VmHWM');
print "# event child $pid: VmHWM ", sprintf('%.1f -> %.1f MiB', ($hwm0 // 0) / $MiB, ($hwm1 // 0) / $MiB),
      " over the eleven 4 MB batches\n";

# Released: a refused batch sent again goes through.
my $again = $answers[0] ? $answers[0]{i} : 0;
my $r = req(POST => "$inst->{url}/batch", batch_of($again));
ok t_cmp($r->code, 200, 'a refused batch sent again is applied (the budget was released)');
ok t_cmp(req(GET => "$inst->{url}/get?key=m/c$again/4")->code, 200, 'and stored');

# KVLSMMaxBatchSize (default 4M): a larger body is refused before it is read.
my $s = raw_connect($inst->{port});
raw_write($s, raw_request(POST => '/batch', '{"ops":[{"op":"set","key":"m/big","value":"' . ('x' x 4_300_000) . '"}]}'), 30);
my $big = raw_read($s, 30);
close $s;
ok t_cmp($big ? $big->{code} : 'none', 413, 'a batch body over KVLSMMaxBatchSize: 413');
my $jb = $big ? eval { JSON::PP->new->decode($big->{body}) } : undef;
ok t_cmp($jb && $jb->{error}, qr/KVLSMMaxBatchSize/, 'naming the directive');
ok t_cmp(req(GET => "$inst->{url}/get?key=m/big")->code, 404, 'and stores nothing');
# The same limit for a chunked body (counted as its chunks arrive), and a
# chunked body within it read whole.
$s = raw_connect($inst->{port});
raw_write($s, raw_request(POST => '/batch', '{"ops":[{"op":"set","key":"m/big","value":"' . ('x' x 4_300_000) . '"}]}',
                          chunked => 1), 30);
$big = raw_read($s, 30);
close $s;
ok t_cmp(($big ? $big->{code} : 'none') . ' ' . ((eval { JSON::PP->new->decode($big->{body}) } || {})->{error} // ''),
         qr/^413 .*KVLSMMaxBatchSize/, 'a chunked batch body over KVLSMMaxBatchSize: 413');
$s = raw_connect($inst->{port});
raw_write($s, raw_request(POST => '/batch', batch_of(11), chunked => 1), 30);
my $ch = raw_read($s, 30);
close $s;
ok t_cmp(($ch ? $ch->{code} : 'none') . ' ' . length((json_of(req(GET => "$inst->{url}/get?key=m/c11/4")) || {})->{value} // ''),
         '200 999000', 'a chunked batch within the limits is read whole and applied');
stop_apache($inst);
