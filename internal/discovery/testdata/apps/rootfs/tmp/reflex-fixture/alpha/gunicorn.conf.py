# fixture config
import os

timeout = 2
errorlog = "error.log"
pidfile = 'gunicorn.pid'
workers = int(os.environ.get('W', 2))
