#!/usr/bin/env bash
# nginx as an `iopool bench http` peer: TechEmpower's plaintext and JSON answers from `return 200`,
# with --threads workers (1 by default), on 127.0.0.1:PORT, in the foreground (so the bench's child
# is the nginx master, and the worker its child: the bench counts the CPU of the whole tree).
#
#     iopool bench http --peer 'nginx=bash Benchmarks/http/nginx-peer.sh {port} {threads}'
#
# Its configuration, pid file and logs go to a temporary directory, removed when nginx exits.
# keepalive_requests is raised from nginx's 1000 so that nginx never closes a connection under
# wrk's load (wrk would reconnect and count the pipelined requests it lost as errors); access
# logging is off, as in TechEmpower's nginx entry. Debian: apt-get install nginx-light.
#
# For Benchmarks/http/counts.py, three optional environment variables (unset: as above):
#   NGINX_PEER_DIR=DIR        write the configuration into DIR (kept) instead of a temporary one
#   NGINX_PEER_MASTER=off     no master process: the one process serves (valgrind and perf then
#                             see the serving process itself; --threads is then 1)
#   NGINX_PEER_CONFIG_ONLY=1  write DIR/nginx.conf and exit; the caller starts
#                             `nginx -p DIR -c DIR/nginx.conf -e DIR/error.log` itself
set -euo pipefail
port=${1:?usage: nginx-peer.sh PORT [WORKERS]}
workers=${2:-1}
nginx=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
[ -x "$nginx" ] || { echo "nginx-peer.sh: nginx is not installed (Debian: apt-get install nginx-light)" >&2; exit 1; }
master=${NGINX_PEER_MASTER:-on}
if [ -n "${NGINX_PEER_DIR:-}" ]; then
    dir=$NGINX_PEER_DIR
else
    dir=$(mktemp -d -t iopool-nginx-peer.XXXXXX)
    cleanup() { rm -rf "$dir"; }
    trap cleanup EXIT
fi
# The master passes SIGTERM on to its workers and exits: the bench stops it that way.
trap 'kill -TERM "$child" 2>/dev/null; wait "$child"; exit 0' TERM INT
mkdir -p "$dir/tmp"
cat >"$dir/nginx.conf" <<CONF
worker_processes $workers;
daemon off;
master_process $master;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events {
    worker_connections 4096;
}
http {
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 65;
    client_body_temp_path $dir/tmp;
    proxy_temp_path $dir/tmp;
    fastcgi_temp_path $dir/tmp;
    uwsgi_temp_path $dir/tmp;
    scgi_temp_path $dir/tmp;
    server_tokens off;
    server {
        listen 127.0.0.1:$port reuseport backlog=4096;
        location = /plaintext {
            default_type text/plain;
            return 200 "Hello, World!";
        }
        location = /json {
            default_type application/json;
            return 200 '{"message":"Hello, World!"}';
        }
        location / {
            return 404;
        }
    }
}
CONF
[ -n "${NGINX_PEER_CONFIG_ONLY:-}" ] && exit 0
echo "nginx-peer.sh: $nginx on 127.0.0.1:$port, $workers worker(s), files in $dir"
"$nginx" -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" &
child=$!
wait "$child"
