#!/usr/bin/perl
# bench/phases.pl -- where an Apache child's CPU goes per request phase,
# from `perf script -F ip,sym` of a `perf record --call-graph dwarf` run
# (bench/profile.sh).  Each sample counts for the innermost phase on its
# stack (walking from the leaf up, the first frame that names one), so
# the engine's time under the handler is the engine's, the socket write
# under the answer is the write's, and the rest of the handler is the
# handler's.  Prints one "share  phase" line per phase, largest first.
use strict;
use warnings;

# [ phase, frames that mark it ], in no particular order: the innermost
# match on a stack decides.
my @phases = (
    [ 'engine (kv_get, kv_put, kv_delete)', qw(kv_get kv_put kv_delete kv_write) ],
    [ 'JSON: parse the /set body (cJSON)', qw(kvr_parse_set kvr_parse_batch) ],
    [ 'JSON: print the answer', qw(kvr_json_kv kvh_send_cjson) ],
    [ 'read the request body', qw(kvh_read_body) ],
    [ 'socket write (core output filter)', qw(ap_core_output_filter) ],
    [ 'response headers (HTTP header filter)', qw(ap_http_header_filter) ],
    [ 'the rest of the store\'s handler', qw(kvlsm_handler) ],
    [ 'quick handler: location walk and checks', qw(kvh_quick_handler) ],
    [ 'request phases before the handler', qw(ap_process_request_internal) ],
    [ 'after the handler (log, EOR, pool)', qw(ap_process_request_after_handler) ],
    [ 'read and parse the request', qw(ap_read_request) ],
    [ 'request: other (quick_handler hook, mutex, ap_die)', qw(ap_process_async_request ap_process_request) ],
    [ 'MPM: worker queue hand-off (futex)', qw(ap_queue_pop_something ap_queue_push_socket
                                               ap_queue_info_set_idle ap_queue_info_wait_for_idler
                                               ap_queue_info_push_pool ap_queue_info_pop_pool) ],
    [ 'MPM: listener (epoll, pollset)', qw(epoll_wait epoll_ctl apr_pollset_poll apr_pollset_add
                                           apr_pollset_remove) ],
    [ 'connection: other', qw(ap_run_process_connection ap_process_connection) ],
);
my %phase_of;
for my $p (@phases) {
    my ($name, @frames) = @$p;
    $phase_of{$_} = $name for @frames;
}
my $other = 'other (no request frame: kernel work, timers, libraries)';

my (%count, $total, @stack);
sub sample {
    return unless @stack;
    $total++;
    my $phase = $other;
    for my $f (@stack) {    # leaf first
        if (exists $phase_of{$f}) { $phase = $phase_of{$f}; last }
    }
    $count{$phase}++;
}
while (my $line = <STDIN>) {
    chomp $line;
    if ($line eq '') { sample(); @stack = (); next }
    next unless $line =~ /^\s/;
    my @f = split ' ', $line;
    next unless @f >= 2;
    (my $sym = $f[1]) =~ s/\+0x[0-9a-f]+$//;
    push @stack, $sym;
}
sample();
$total ||= 1;
for my $p (sort { $count{$b} <=> $count{$a} } keys %count) {
    printf "%5.1f%%  %s\n", 100 * $count{$p} / $total, $p;
}
printf "(%d samples)\n", $total;
