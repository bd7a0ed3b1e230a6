# metrics.t -- GET /metrics: the store's figures in Prometheus's text
# format, store-wide.  Against an Apache with three children (event MPM),
# every write through a fresh connection is counted once in the next
# scrape whichever child answers it, scrapes from different children
# agree and never go back, a killed child and a graceful restart lose no
# count, /stats says the same; `promtool check metrics` finds nothing to
# say about the output; and a real Prometheus (started here on a loopback
# port, scraping every second, stopped by PID) answers a rate() query
# over it.  Without Debian's prometheus package those two parts skip.
use strict;
use warnings FATAL => 'all';
use Apache::Test;
use Apache::TestUtil;
use File::Temp qw(tempdir);
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);
use KVTest;

my $promtool = '/usr/bin/promtool';
my $prometheus = '/usr/bin/prometheus';
my $no_promtool = -x $promtool ? 0 : "$promtool not found (Debian package prometheus)";
my $no_prometheus = -x $prometheus ? 0 : "$prometheus not found (Debian package prometheus)";

plan tests => 24;

my @counters = qw(gets sets dels batches flushes compactions write_stalls write_stall_seconds
                  bytes_read bytes_written syncs background_errors);
my @gauges = qw(sst_bytes sst_files memtable_bytes wal_bytes last_sequence counters_store_wide);
# Counters only requests move (background flushes and syncs may move the others).
my @by_requests = qw(gets sets dels batches bytes_read bytes_written);

# { v => { 'name{labels}' => value }, type => { name => type }, help => {...}, bad => [lines] }
sub parse_metrics {
    my ($text) = @_;
    my %m = (v => {}, type => {}, help => {}, bad => []);
    for my $line (split /\n/, $text) {
        if ($line =~ /^# TYPE (\S+) (\S+)$/) { $m{type}{$1} = $2 }
        elsif ($line =~ /^# HELP (\S+) (.+)$/) { $m{help}{$1} = $2 }
        elsif ($line =~ /^#/) { }
        elsif ($line =~ /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$/) { $m{v}{$1} = $2 }
        else { push @{ $m{bad} }, $line }
    }
    return \%m;
}

sub scrape {
    my ($inst) = @_;
    my $r = req(GET => "$inst->{url}/metrics");   # a fresh connection each time
    die 'GET /metrics: ' . $r->status_line unless $r->code == 200;
    my $m = parse_metrics($r->content);
    $m->{pid} = $r->header('X-KVLSM-Pid') // 'none';
    $m->{res} = $r;
    return $m;
}

# Every series that must only grow: the counters, the histogram's buckets,
# sum and count.  Returns the names that went back.
sub went_back {
    my ($prev, $cur) = @_;
    return grep { $cur->{v}{$_} < $prev->{v}{$_} }
           grep { /_total$|_bucket\{|_sum$|_count$/ && defined $cur->{v}{$_} } keys %{ $prev->{v} };
}

# The histogram holds together: buckets cumulative, +Inf = count.
sub histogram_ok {
    my ($m) = @_;
    my @le = map { /^kvlsm_request_duration_seconds_bucket\{le="([^"]+)"\}$/ ? [$1, $m->{v}{$_}] : () }
             keys %{ $m->{v} };
    my $key = sub { $_[0] eq '+Inf' ? 9e99 : $_[0] };
    @le = sort { $key->($a->[0]) <=> $key->($b->[0]) } @le;
    return 0 unless @le == 17 && $le[-1][0] eq '+Inf' && $le[0][0] eq '0.0001';
    for my $i (1 .. $#le) { return 0 if $le[$i][1] < $le[$i - 1][1] }
    return $le[-1][1] == $m->{v}{kvlsm_request_duration_seconds_count};
}

my $inst = start_apache(mpm => 'event', servers => 3);
my $requests = 0;    # requests to the handler this test has completed

my $first = scrape($inst);
$requests++;
my $res = $first->{res};
ok t_cmp($res->header('Content-Type'), 'text/plain; version=0.0.4; charset=utf-8', 'Content-Type');
my @missing = grep { !defined $first->{v}{"kvlsm_${_}_total"} || ($first->{type}{"kvlsm_${_}_total"} // '') ne 'counter'
                     || !$first->{help}{"kvlsm_${_}_total"} } @counters;
push @missing, grep { !defined $first->{v}{"kvlsm_$_"} || ($first->{type}{"kvlsm_$_"} // '') ne 'gauge' } @gauges;
for my $l (0 .. 6) {
    push @missing, "level $l" unless defined $first->{v}{"kvlsm_level_files{level=\"$l\"}"}
                                   && defined $first->{v}{"kvlsm_level_bytes{level=\"$l\"}"};
}
push @missing, 'histogram' unless ($first->{type}{kvlsm_request_duration_seconds} // '') eq 'histogram'
                                  && defined $first->{v}{kvlsm_request_duration_seconds_sum}
                                  && histogram_ok($first);
ok t_cmp("@missing", '', 'every counter, gauge and the histogram, with HELP and TYPE');
ok t_cmp(scalar @{ $first->{bad} }, 0, 'every line is a comment or a sample: ' . join(' | ', @{ $first->{bad} }));
ok t_cmp($first->{v}{kvlsm_counters_store_wide}, 1, 'the counters are the store\'s');
ok t_cmp(req(POST => "$inst->{url}/metrics", '')->code, 405, 'POST /metrics is 405');
my $head = req(HEAD => "$inst->{url}/metrics");
ok t_cmp($head->code . ' ' . length($head->content), '200 0', 'HEAD /metrics: 200, no body');
$requests += 2;

# Each write, through a fresh connection, is in the next scrape, through
# another fresh connection, whichever children answer.
my (%pids, @back, $prev);
my ($exact, $hist_ok) = (1, 1);
$prev = $first;
for my $i (1 .. 40) {
    my $w = req(POST => "$inst->{url}/set", qq({"key":"m$i","value":"0123456789"}));
    die 'set failed: ' . $w->status_line unless $w->code == 200;
    $pids{ $w->header('X-KVLSM-Pid') // 'none' }++;
    my $m = scrape($inst);
    $requests += 2;
    $pids{ $m->{pid} }++;
    $exact = 0 unless $m->{v}{kvlsm_sets_total} == $i;
    push @back, went_back($prev, $m);
    $hist_ok = 0 unless histogram_ok($m);
    $prev = $m;
}
ok t_cmp($exact, 1, 'after the i-th acknowledged set a scrape from a fresh connection says i');
ok t_cmp("@back", '', 'no counter, bucket, sum or count went back between scrapes');
ok t_cmp($hist_ok, 1, 'every scrape: buckets cumulative, +Inf bucket = count');

# With nothing written, scrapes answered by different children agree
# (until three children answered, or 200 scrapes).
my (%seen, %steady);
for (my $i = 0; $i < 200 && keys(%steady) < 3; $i++) {
    my $m = scrape($inst);
    $requests++;
    $pids{ $m->{pid} }++;
    $steady{ $m->{pid} }++;
    $seen{ join ' ', map { "$_=" . $m->{v}{"kvlsm_${_}_total"} } @by_requests }++;
}
my @answers = keys %seen;
ok t_cmp(scalar(@answers) . ' ' . (keys(%steady) >= 2 ? 'several' : 'one'), '1 several',
         'children ' . join(',', sort keys %steady) . ' give one answer: ' . join(' / ', @answers));
ok t_cmp(scalar(grep { $_ ne 'none' } keys %pids) >= 2 ? 1 : 0, 1,
         'scrapes and writes answered by several children (' . join(',', sort keys %pids) . ')');
my $st = json_of(req(GET => "$inst->{url}/stats"));
$requests++;
ok t_cmp("$st->{counters} $st->{sets} $st->{gets}", 'store 40 0', '/stats: the store\'s counters, the same');

# The histogram counts every request the handler answered (each is logged
# just after its answer goes out, so allow it a moment).
my $deadline = time + 10;
my $m = scrape($inst);
while ($m->{v}{kvlsm_request_duration_seconds_count} < $requests && time < $deadline) {
    sleep 0.05;
    $m = scrape($inst);
}
ok t_cmp($m->{v}{kvlsm_request_duration_seconds_count} >= $requests ? 1 : 0, 1,
         "request durations counted: $m->{v}{kvlsm_request_duration_seconds_count} of at least $requests");
ok t_cmp($m->{v}{kvlsm_request_duration_seconds_sum} > 0 ? 1 : 0, 1, 'their sum is positive');

# A child killed with SIGKILL, and a graceful restart: no count lost.
my $victim = $m->{pid};
kill 'KILL', $victim if $victim =~ /^\d+$/ && $victim != $inst->{pid};
$deadline = time + 10;
sleep 0.05 while kill(0, $victim) && time < $deadline;
my $after_kill = scrape($inst);
ok t_cmp($after_kill->{v}{kvlsm_sets_total} . ' ' . ($after_kill->{pid} ne $victim ? 'other' : 'same'),
         '40 other', "after SIGKILL of child $victim, another child still counts 40 sets");
system(httpd(), '-f', $inst->{conf}, '-k', 'graceful') == 0 or die 'graceful failed';
my $w = req(POST => "$inst->{url}/set", '{"key":"after-graceful","value":"x"}');
ok t_cmp($w->code, 200, 'a set after a graceful restart');
ok t_cmp(scrape($inst)->{v}{kvlsm_sets_total}, 41, 'the new generation counts on from 40');

# promtool on a busy store's output (flushed files in level 0 or beyond).
my $big = 'x' x 900;
for my $i (1 .. 150) {   # 135 KB through a 64 KiB memtable: flushes
    req(POST => "$inst->{url}/set", qq({"key":"p$i","value":"$big"}));
}
$deadline = time + 30;
do { $m = scrape($inst) } while ($m->{v}{kvlsm_sst_files} < 1 && time < $deadline && sleep(0.1));
ok t_cmp($m->{v}{kvlsm_flushes_total} >= 1 && $m->{v}{kvlsm_sst_files} >= 1 ? 1 : 0, 1,
         "flushes ($m->{v}{kvlsm_flushes_total}) and SST files ($m->{v}{kvlsm_sst_files}) show");
if ($no_promtool) {
    skip($no_promtool, 0) for 1 .. 2;
}
else {
    my $dir = tempdir('kvlsm-promtool-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    open my $fh, '>', "$dir/metrics.txt" or die $!;
    print $fh $m->{res}->content;
    close $fh;
    my $out = `$promtool check metrics < $dir/metrics.txt 2>&1`;
    my $rc = $? >> 8;
    t_debug("promtool check metrics: exit $rc, output: '$out'");
    ok t_cmp($rc, 0, 'promtool check metrics exits 0');
    ok t_cmp($out, '', 'and has nothing to say');
}

# A real Prometheus scraping the store every second.
if ($no_prometheus) {
    skip($no_prometheus, 0) for 1 .. 4;
}
else {
    my $dir = tempdir('kvlsm-prometheus-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    my $pport = free_port();
    open my $fh, '>', "$dir/prometheus.yml" or die $!;
    print $fh <<"YML";
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: kvlsm
    metrics_path: /metrics
    static_configs:
      - targets: ['127.0.0.1:$inst->{port}']
YML
    close $fh;
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if (!$pid) {
        open STDOUT, '>', "$dir/prometheus.log";
        open STDERR, '>&', \*STDOUT;
        exec($prometheus, "--config.file=$dir/prometheus.yml", "--storage.tsdb.path=$dir/tsdb",
             "--web.listen-address=127.0.0.1:$pport") or POSIX::_exit(127);
    }
    my $purl = "http://127.0.0.1:$pport";
    my $alive = sub { waitpid($pid, WNOHANG) == 0 };
    my $ready = 0;
    $deadline = time + 60;
    while (!$ready && time < $deadline && $alive->()) {
        my $r = req(GET => "$purl/-/ready");
        $ready = $r->code == 200;
        sleep 0.1 unless $ready;
    }
    t_debug('prometheus log: ' . `tail -5 $dir/prometheus.log`) unless $ready;
    ok t_cmp($ready, 1, "Prometheus (pid $pid) ready on 127.0.0.1:$pport");

    # Writes go on while we ask, until the rate is there (bounded).
    my ($rate, $up, $n) = (undef, undef, 0);
    $deadline = time + 60;
    while ($ready && time < $deadline && !(defined $rate && $rate > 0)) {
        for (1 .. 20) {
            $n++;
            req(POST => "$inst->{url}/set", qq({"key":"r$n","value":"v"}));
        }
        my $q = json_of(req(GET => "$purl/api/v1/query?query=rate(kvlsm_sets_total%5B5s%5D)"));
        my $res = $q && $q->{status} eq 'success' ? $q->{data}{result} : [];
        $rate = $res->[0]{value}[1] if @$res;
        my $u = json_of(req(GET => "$purl/api/v1/query?query=up%7Bjob%3D%22kvlsm%22%7D"));
        $up = $u->{data}{result}[0]{value}[1] if $u && $u->{status} eq 'success' && @{ $u->{data}{result} };
        sleep 0.2;
    }
    t_debug("rate(kvlsm_sets_total[5s]) = " . ($rate // 'none') . " after $n sets");
    ok t_cmp(defined $rate ? 1 : 0, 1, 'rate(kvlsm_sets_total[5s]) has an answer');
    ok t_cmp(defined $rate && $rate > 0 ? 1 : 0, 1, 'and it is positive while writes go on (' . ($rate // 'none') . '/s)');
    ok t_cmp($up, 1, 'the target is up');

    kill 'TERM', $pid;
    $deadline = time + 20;
    sleep 0.05 while $alive->() && time < $deadline;
    if ($alive->()) {
        kill 'KILL', $pid;
        waitpid($pid, 0);
        die "prometheus $pid did not stop on TERM";
    }
}
stop_apache($inst);
