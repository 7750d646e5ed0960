"""The console in a real browser: Debian's chromium, headless, driven over WebDriver by selenium
(Debian's chromium-driver). Run by engine/tests/console_browser.rs against a hydrantd it started
(open on loopback, batches retried 3 s before the error output).

    console_browser.py ENDPOINT OBJECTS_DIR SCREENSHOT_DIR

What it does, as a user would, and what it checks:
1. opens the streams page; creates a stream through the form (tagged with a value that has
   markup-like characters the API accepts); lands on its stream page;
2. sends records with boto3; without reloading, the stream's row (refreshed by the console's
   script) shows them, and the stream page's "Incoming records" chart moves;
3. breaks the destination (a file where the prefix's directory must be), sends a record that is
   markup; the row shows DELIVERY FAILING and the stream page the error-output entry, whose raw
   data, shown on request, is text (no alert opens);
4. deletes the stream: the confirmation page, the name typed, the stream gone (boto3 agrees);
5. a page of another site (another port: another origin) posts the create form to the console
   by itself, as a cross-site request forgery would: the browser, logged in to the console,
   sends no cookie with it (SameSite=Strict) and no token, and the console refuses it (403);
   nothing is created.
A screenshot of each page goes to SCREENSHOT_DIR.
"""
import http.server
import os
import sys
import threading
import time

import boto3
from botocore.config import Config
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

ENDPOINT, OBJECTS, SHOTS = sys.argv[1], sys.argv[2], sys.argv[3]
NAME = "web-orders"
XSS = "<script>alert(1)</script>"
os.makedirs(SHOTS, exist_ok=True)


def browser():
    opts = webdriver.ChromeOptions()
    opts.binary_location = os.environ.get("HYDRANT_CHROMIUM", "/usr/bin/chromium")
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1400,1000"):
        opts.add_argument(a)
    service = Service(executable_path=os.environ.get("HYDRANT_CHROMEDRIVER", "/usr/bin/chromedriver"))
    return webdriver.Chrome(options=opts, service=service)


def wait(what, cond, limit=60):
    deadline = time.time() + limit
    last = v = None
    while time.time() < deadline:
        try:
            v = cond()
            if v:
                return v
        except Exception as e:  # the page may be swapping #live
            last = e
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what} (last value: {v!r}, last error: {last})")


def shot(d, name):
    d.save_screenshot(os.path.join(SHOTS, name))


def no_alert(d):
    try:
        d.switch_to.alert
    except NoAlertPresentException:
        return
    raise AssertionError("an alert opened: markup ran as script")


def row(d):
    return d.find_element(By.CSS_SELECTOR, f'tr[data-stream="{NAME}"]')


def chart_ys(d, title):
    """The y coordinates of the first data line of the chart titled `title` (none: no line),
    read in one script call (the page's own script may swap #live meanwhile)."""
    ys = d.execute_script("""
        for (const fig of document.querySelectorAll('figure.chart')) {
          if (!fig.querySelector('figcaption').textContent.startsWith(arguments[0])) continue;
          for (const l of fig.querySelectorAll('polyline')) {
            if ((l.getAttribute('stroke') || '').toUpperCase() === '#1F66C4') {
              return l.getAttribute('points').trim().split(/\\s+/)
                .map(p => parseFloat(p.split(',')[1]));
            }
          }
          return [];
        }
        return null;""", title)
    assert ys is not None, f"no chart {title}"
    return ys


fh = boto3.client("firehose", endpoint_url=ENDPOINT, region_name="us-east-1",
                  aws_access_key_id="x", aws_secret_access_key="x",
                  config=Config(retries={"max_attempts": 1}))
d = browser()
try:
    # 1. The streams page, then the create form.
    d.get(ENDPOINT + "/console/?refresh=1")
    assert d.find_element(By.TAG_NAME, "h1").text == "Delivery streams"
    shot(d, "streams-empty.png")
    d.find_element(By.LINK_TEXT, "Create stream").click()
    form = d.find_element(By.CSS_SELECTOR, "form.create")
    def fill(name, value):
        el = form.find_element(By.NAME, name)
        el.clear()
        el.send_keys(value)
    fill("name", NAME)
    fill("tags", "team=a+b@c:d/e")
    fill("bucket", "orders")
    fill("prefix", "data/")
    fill("error_prefix", "errors/!{firehose:error-output-type}/")
    fill("buffer_mb", "1")
    fill("buffer_seconds", "0")
    shot(d, "create.png")
    form.find_element(By.ID, "create").click()
    wait("the stream page", lambda: d.find_element(By.TAG_NAME, "h1").text == NAME)
    wait("ACTIVE", lambda: fh.describe_delivery_stream(DeliveryStreamName=NAME)
         ["DeliveryStreamDescription"]["DeliveryStreamStatus"] == "ACTIVE")
    assert "team=a+b@c:d/e" in d.find_element(By.CSS_SELECTOR, ".tags").text

    # 2. Records with boto3; the row refreshes by itself; the chart moves.
    d.get(ENDPOINT + "/console/?refresh=1")
    wait("the row", lambda: "0 since start" in row(d).text)
    for i in range(5):
        fh.put_record_batch(DeliveryStreamName=NAME,
                            Records=[{"Data": f'{{"order":{i * 20 + j}}}\n'.encode()} for j in range(20)])
    wait("the row to show 100 records (refreshed by the script)",
         lambda: "100 since start" in row(d).text)
    shot(d, "streams.png")
    d.get(ENDPOINT + f"/console/streams/{NAME}?refresh=2")
    wait("the delivered count", lambda: d.find_element(By.CSS_SELECTOR, "dd.delivered-total").text == "100")
    # A step is 10 s: the incoming-records line gets a point above the axis.
    wait("the Incoming records chart to move",
         lambda: len(set(chart_ys(d, "Incoming records"))) > 1, limit=40)
    shot(d, "stream.png")

    # 3. Break the destination: a file where the prefix's directory must be.
    data = os.path.join(OBJECTS, "orders", "data")
    os.rename(data, data + ".moved")
    with open(data, "w") as f:
        f.write("not a directory")
    fh.put_record(DeliveryStreamName=NAME, Record={"Data": XSS.encode()})
    d.get(ENDPOINT + "/console/?refresh=1")
    wait("the row to show the failure", lambda: "DELIVERY FAILING" in row(d).text)
    wait("the row's delivery errors of the last hour",
         lambda: int(row(d).find_elements(By.TAG_NAME, "td")[6].text.split()[0]) > 0)
    shot(d, "streams-failing.png")
    d.get(ENDPOINT + f"/console/streams/{NAME}?raw=1&refresh=1")
    wait("the error-output entry",
         lambda: d.find_elements(By.CSS_SELECTOR, "table.failures tr.error-output"), limit=60)
    entry = d.find_element(By.CSS_SELECTOR, "table.failures tr.error-output")
    assert XSS in entry.text, entry.text
    no_alert(d)
    assert d.find_elements(By.CSS_SELECTOR, "table.failures tr.attempt"), "the failed attempts are listed"
    shot(d, "stream-failing.png")
    # Fixed again: delivery recovers.
    os.remove(data)
    os.rename(data + ".moved", data)
    fh.put_record(DeliveryStreamName=NAME, Record={"Data": b'{"order":"after"}\n'})
    d.get(ENDPOINT + "/console/?refresh=1")
    wait("the row to recover", lambda: "DELIVERY FAILING" not in row(d).text
         and "ACTIVE" in row(d).text)

    # 4. Delete with the confirmation.
    d.get(ENDPOINT + f"/console/streams/{NAME}")
    d.find_element(By.LINK_TEXT, "Delete").click()
    wait("the confirmation", lambda: d.find_element(By.TAG_NAME, "h1").text == f"Delete {NAME}?")
    d.find_element(By.NAME, "confirm").send_keys(NAME)
    shot(d, "delete.png")
    d.find_element(By.ID, "delete").click()
    wait("the streams page", lambda: d.find_element(By.TAG_NAME, "h1").text == "Delivery streams")
    assert not d.find_elements(By.CSS_SELECTOR, f'tr[data-stream="{NAME}"]')
    assert NAME not in fh.list_delivery_streams()["DeliveryStreamNames"]

    # 5. A cross-site post from another origin, while the browser has a console session.
    evil = ("<!doctype html><form id=f method=post action='" + ENDPOINT + "/console/new'>"
            "<input name=name value=forged><input name=kind value=s3>"
            "<input name=role_arn value='arn:aws:iam::123456789012:role/r'>"
            "<input name=bucket value=b><input name=buffer_mb value=1>"
            "<input name=buffer_seconds value=0></form>"
            "<script>document.getElementById('f').submit()</script>").encode()

    class Evil(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(evil)

        def log_message(self, *args):
            pass

    site = http.server.HTTPServer(("127.0.0.1", 0), Evil)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    d.get(ENDPOINT + "/console/new")  # the browser holds a console session cookie
    assert d.get_cookie("hydrant_console"), "a console session"
    d.get(f"http://127.0.0.1:{site.server_address[1]}/")
    wait("the forged post's answer", lambda: "CSRF" in d.find_element(By.TAG_NAME, "body").text)
    shot(d, "csrf-refused.png")
    site.shutdown()
    assert "forged" not in fh.list_delivery_streams()["DeliveryStreamNames"]
    print("console browser test: ok")
finally:
    d.quit()
