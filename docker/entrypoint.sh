#!/bin/sh
# One image, three roles: web (migrates, then gunicorn), worker, beat.
set -eu
case "${1:-web}" in
  web)
    python manage.py migrate --noinput
    exec gunicorn royalties.wsgi:application --bind 0.0.0.0:8000 \
      --workers "${GUNICORN_WORKERS:-3}" --threads "${GUNICORN_THREADS:-4}" --timeout 60 \
      --access-logfile - --forwarded-allow-ips '*'
    ;;
  worker)
    exec celery -A royalties worker --loglevel=INFO --concurrency "${CELERY_CONCURRENCY:-2}"
    ;;
  beat)
    exec celery -A royalties beat --loglevel=INFO --schedule /data/celerybeat-schedule
    ;;
  *)
    exec "$@"
    ;;
esac
