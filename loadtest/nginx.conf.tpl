# The reference server of loadtest/shortlinks.sh: nginx answering `return 302` from a `map` of the
# same 100 000 codes panlink serves. @WORK@ and @PORT@ are replaced by the run's temp dir and port.
worker_processes 1;
pid @WORK@/nginx/nginx.pid;
error_log @WORK@/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path @WORK@/nginx/body;
  proxy_temp_path @WORK@/nginx/proxy;
  fastcgi_temp_path @WORK@/nginx/fastcgi;
  uwsgi_temp_path @WORK@/nginx/uwsgi;
  scgi_temp_path @WORK@/nginx/scgi;
  map_hash_max_size 262144;
  map_hash_bucket_size 256;
  map $uri $target {
    default "";
    include @WORK@/map.conf;
  }
  server {
    listen 127.0.0.1:@PORT@;
    location / {
      if ($target = "") { return 404; }
      add_header Cache-Control "private, max-age=90" always;
      return 302 $target;
    }
  }
}
