"""hydrantd against real Python clients: boto3 and the aws cli (awscli v1 from PyPI).

Run by engine/tests/python.rs, which starts the daemons and passes:
  HYDRANT_ENDPOINT        a daemon without authentication
  HYDRANT_SIGV4_ENDPOINT  a daemon with one access key: HYDRANT_KEY_ID / HYDRANT_SECRET
  HYDRANT_TLS_ENDPOINT    a daemon serving HTTPS with the certificate HYDRANT_TLS_CA
  HYDRANT_AWS_CLI         the aws executable of the venv
  HYDRANT_EXPECT_FILE     where to write {stream: {record id: base64 bytes}} of acknowledged records;
                          the Rust side checks them in the WAL after stopping the daemon
"""

import base64
import datetime
import json
import os
import subprocess
import time
import unittest
import urllib.error
import urllib.request

import boto3
import botocore.auth
import botocore.awsrequest
import botocore.credentials
import botocore.exceptions
from botocore.config import Config

ENDPOINT = os.environ["HYDRANT_ENDPOINT"]
SIGV4_ENDPOINT = os.environ["HYDRANT_SIGV4_ENDPOINT"]
KEY_ID = os.environ["HYDRANT_KEY_ID"]
SECRET = os.environ["HYDRANT_SECRET"]
TLS_ENDPOINT = os.environ["HYDRANT_TLS_ENDPOINT"]
TLS_CA = os.environ["HYDRANT_TLS_CA"]
AWS_CLI = os.environ["HYDRANT_AWS_CLI"]
EXPECT_FILE = os.environ["HYDRANT_EXPECT_FILE"]

S3 = {
    "RoleARN": "arn:aws:iam::123456789012:role/firehose",
    "BucketARN": "arn:aws:s3:::py-bucket",
}
NO_RETRY = Config(retries={"max_attempts": 1, "mode": "standard"})

EXPECTED = {}


def expect(stream, record_id, data):
    EXPECTED.setdefault(stream, {})[record_id] = base64.b64encode(data).decode()


def client(endpoint=ENDPOINT, key="test", secret="test", **kw):
    return boto3.client(
        "firehose",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=NO_RETRY,
        **kw,
    )


def error_code(excinfo):
    return excinfo.exception.response["Error"]["Code"]


def wait_active(c, name):
    for _ in range(1500):
        d = c.describe_delivery_stream(DeliveryStreamName=name)
        if d["DeliveryStreamDescription"]["DeliveryStreamStatus"] == "ACTIVE":
            return d
        time.sleep(0.02)
    raise AssertionError(f"{name} never became ACTIVE")


def raw_post(target, body, content_type="application/x-amz-json-1.1", headers=None):
    req = urllib.request.Request(ENDPOINT + "/", data=body, method="POST")
    if target is not None:
        req.add_header("X-Amz-Target", target)
    if content_type is not None:
        req.add_header("Content-Type", content_type)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


class Boto3Operations(unittest.TestCase):
    def test_every_operation(self):
        c = client()
        name = "py-ops"
        arn = c.create_delivery_stream(
            DeliveryStreamName=name,
            DeliveryStreamType="DirectPut",
            ExtendedS3DestinationConfiguration=dict(S3, CompressionFormat="GZIP"),
            Tags=[{"Key": "team", "Value": "py"}],
        )["DeliveryStreamARN"]
        self.assertTrue(arn.endswith(":deliverystream/" + name))
        d = wait_active(c, name)["DeliveryStreamDescription"]
        self.assertEqual(d["VersionId"], "1")
        self.assertEqual(d["DeliveryStreamType"], "DirectPut")
        self.assertFalse(d["HasMoreDestinations"])
        dest = d["Destinations"][0]
        self.assertEqual(dest["DestinationId"], "destinationId-000000000001")
        ext = dest["ExtendedS3DestinationDescription"]
        self.assertEqual(ext["CompressionFormat"], "GZIP")
        self.assertEqual(ext["BufferingHints"], {"SizeInMBs": 5, "IntervalInSeconds": 300})
        self.assertEqual(ext["EncryptionConfiguration"], {"NoEncryptionConfig": "NoEncryption"})
        self.assertIsInstance(d["CreateTimestamp"], datetime.datetime)

        self.assertIn(name, c.list_delivery_streams(Limit=100)["DeliveryStreamNames"])

        r = c.put_record(DeliveryStreamName=name, Record={"Data": b"one\n"})
        expect(name, r["RecordId"], b"one\n")
        self.assertFalse(r["Encrypted"])
        recs = [{"Data": f"rec-{i}\n".encode()} for i in range(500)]
        r = c.put_record_batch(DeliveryStreamName=name, Records=recs)
        self.assertEqual(r["FailedPutCount"], 0)
        self.assertEqual(len(r["RequestResponses"]), 500)
        for rec, resp in zip(recs, r["RequestResponses"]):
            self.assertNotIn("ErrorCode", resp)
            expect(name, resp["RecordId"], rec["Data"])
        self.assertEqual(len(set(x["RecordId"] for x in r["RequestResponses"])), 500)

        c.update_destination(
            DeliveryStreamName=name,
            CurrentDeliveryStreamVersionId="1",
            DestinationId="destinationId-000000000001",
            ExtendedS3DestinationUpdate={"Prefix": "logs/", "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 60}},
        )
        d = c.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
        self.assertEqual(d["VersionId"], "2")
        ext = d["Destinations"][0]["ExtendedS3DestinationDescription"]
        self.assertEqual(ext["Prefix"], "logs/")
        self.assertEqual(ext["CompressionFormat"], "GZIP", "merged")
        self.assertIn("LastUpdateTimestamp", d)
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            c.update_destination(
                DeliveryStreamName=name,
                CurrentDeliveryStreamVersionId="1",
                DestinationId="destinationId-000000000001",
                ExtendedS3DestinationUpdate={"Prefix": "x/"},
            )
        self.assertEqual(error_code(e), "ConcurrentModificationException")

        c.tag_delivery_stream(DeliveryStreamName=name, Tags=[{"Key": "env", "Value": "ci"}])
        tags = c.list_tags_for_delivery_stream(DeliveryStreamName=name)
        self.assertEqual(tags["Tags"], [{"Key": "env", "Value": "ci"}, {"Key": "team", "Value": "py"}])
        self.assertFalse(tags["HasMoreTags"])
        c.untag_delivery_stream(DeliveryStreamName=name, TagKeys=["team"])
        tags = c.list_tags_for_delivery_stream(DeliveryStreamName=name)
        self.assertEqual(tags["Tags"], [{"Key": "env", "Value": "ci"}])

        c.create_delivery_stream(DeliveryStreamName="py-gone", S3DestinationConfiguration=S3)
        wait_active(c, "py-gone")
        c.delete_delivery_stream(DeliveryStreamName="py-gone")
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            c.describe_delivery_stream(DeliveryStreamName="py-gone")
        self.assertEqual(error_code(e), "ResourceNotFoundException")

    def test_errors(self):
        c = client()
        cases = [
            (lambda: c.describe_delivery_stream(DeliveryStreamName="nope"), "ResourceNotFoundException"),
            (lambda: c.put_record(DeliveryStreamName="nope", Record={"Data": b"x"}), "ResourceNotFoundException"),
            (lambda: c.delete_delivery_stream(DeliveryStreamName="nope"), "ResourceNotFoundException"),
            (lambda: c.create_delivery_stream(DeliveryStreamName="default", ExtendedS3DestinationConfiguration=S3), "ResourceInUseException"),
            (lambda: c.put_record_batch(DeliveryStreamName="default", Records=[{"Data": b"x"}] * 501), "InvalidArgumentException"),
            (lambda: c.put_record(DeliveryStreamName="default", Record={"Data": b"x" * 1_024_001}), "InvalidArgumentException"),
            (lambda: c.put_record_batch(DeliveryStreamName="default", Records=[{"Data": b"x" * 1_000_000}] * 5), "InvalidArgumentException"),
            (lambda: c.create_delivery_stream(DeliveryStreamName="py-redshift", RedshiftDestinationConfiguration={
                "RoleARN": S3["RoleARN"], "ClusterJDBCURL": "jdbc:redshift://x.redshift.amazonaws.com:5439/db",
                "CopyCommand": {"DataTableName": "t"}, "S3Configuration": S3}), "InvalidArgumentException"),
            (lambda: c.create_delivery_stream(DeliveryStreamName="py-bad", ExtendedS3DestinationConfiguration={"RoleARN": "nope", "BucketARN": "arn:aws:s3:::b"}), "InvalidArgumentException"),
            (lambda: c.tag_delivery_stream(DeliveryStreamName="default", Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(51)]), "LimitExceededException"),
            (lambda: c.tag_delivery_stream(DeliveryStreamName="default", Tags=[{"Key": "aws:reserved", "Value": "v"}]), "InvalidArgumentException"),
        ]
        for call, want in cases:
            with self.subTest(want=want):
                with self.assertRaises(botocore.exceptions.ClientError) as e:
                    call()
                self.assertEqual(error_code(e), want)
                self.assertEqual(e.exception.response["ResponseMetadata"]["HTTPStatusCode"], 400)

    def test_raw_protocol_errors(self):
        st, v = raw_post("Firehose_20150804.NoSuchThing", b"{}")
        self.assertEqual((st, v["__type"]), (400, "UnknownOperationException"))
        st, v = raw_post("Firehose_20150804.PutRecordBatch", b'{"DeliveryStreamName": ')
        self.assertEqual((st, v["__type"]), (400, "SerializationException"))
        st, v = raw_post("Firehose_20150804.PutRecordBatch", b'{"DeliveryStreamName": "default", "Records": [{"Data": "***"}]}')
        self.assertEqual((st, v["__type"]), (400, "SerializationException"))

    def test_list_paging(self):
        c = client()
        for n in ("py-page-a", "py-page-b", "py-page-c"):
            c.create_delivery_stream(DeliveryStreamName=n, ExtendedS3DestinationConfiguration=S3)
        page = c.list_delivery_streams(Limit=1, ExclusiveStartDeliveryStreamName="py-page-a")
        self.assertEqual(page["DeliveryStreamNames"], ["py-page-b"])
        self.assertTrue(page["HasMoreDeliveryStreams"])
        names = c.list_delivery_streams(Limit=10000)["DeliveryStreamNames"]
        self.assertEqual(names, sorted(names))


class SigV4(unittest.TestCase):
    def test_signed_requests(self):
        good = client(SIGV4_ENDPOINT, KEY_ID, SECRET)
        r = good.put_record_batch(DeliveryStreamName="default", Records=[{"Data": b"signed-1"}, {"Data": b"signed-2"}])
        self.assertEqual(r["FailedPutCount"], 0)
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            client(SIGV4_ENDPOINT, KEY_ID, "wrong-secret").list_delivery_streams()
        self.assertEqual(error_code(e), "InvalidSignatureException")
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            client(SIGV4_ENDPOINT, "AKIDUNKNOWN", SECRET).list_delivery_streams()
        self.assertEqual(error_code(e), "UnrecognizedClientException")

    def test_clock_skew(self):
        creds = botocore.credentials.Credentials(KEY_ID, SECRET)
        req = botocore.awsrequest.AWSRequest(
            method="POST",
            url=SIGV4_ENDPOINT + "/",
            data=b"{}",
            headers={"X-Amz-Target": "Firehose_20150804.ListDeliveryStreams", "Content-Type": "application/x-amz-json-1.1"},
        )
        botocore.auth.SigV4Auth(creds, "firehose", "us-east-1").add_auth(req)
        # Re-date the request 10 minutes into the past: the skew check comes first.
        old = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=10)).strftime("%Y%m%dT%H%M%SZ")
        req.headers.replace_header("X-Amz-Date", old)
        prepared = req.prepare()
        r = urllib.request.Request(prepared.url, data=prepared.body, method="POST", headers=dict(prepared.headers))
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(r)
        body = json.loads(e.exception.read())
        self.assertEqual(body["__type"], "InvalidSignatureException")
        self.assertIn("Signature expired", body["message"])


class Tls(unittest.TestCase):
    def test_https(self):
        c = client(TLS_ENDPOINT, verify=TLS_CA)
        r = c.put_record(DeliveryStreamName="default", Record={"Data": b"over tls"})
        self.assertEqual(len(r["RecordId"]), 32)
        self.assertIn("default", c.list_delivery_streams()["DeliveryStreamNames"])


class AwsCli(unittest.TestCase):
    def cli(self, *args, endpoint=ENDPOINT, check=True):
        env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1",
                   AWS_MAX_ATTEMPTS="1", AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null")
        p = subprocess.run([AWS_CLI, "firehose", *args, "--endpoint-url", endpoint, "--output", "json"],
                           capture_output=True, text=True, env=env, timeout=120)
        if check:
            self.assertEqual(p.returncode, 0, p.stderr)
            return json.loads(p.stdout) if p.stdout.strip() else {}
        return p

    def test_cli_operations(self):
        out = self.cli("create-delivery-stream", "--delivery-stream-name", "py-cli",
                       "--extended-s3-destination-configuration", json.dumps(S3))
        self.assertIn("DeliveryStreamARN", out)
        for _ in range(1500):
            d = self.cli("describe-delivery-stream", "--delivery-stream-name", "py-cli")
            if d["DeliveryStreamDescription"]["DeliveryStreamStatus"] == "ACTIVE":
                break
            time.sleep(0.02)
        else:
            self.fail("py-cli never became ACTIVE")
        self.assertIn("py-cli", self.cli("list-delivery-streams")["DeliveryStreamNames"])
        # awscli v1 sends blob arguments as given and base64-encodes them itself.
        r = self.cli("put-record", "--delivery-stream-name", "py-cli", "--record", "Data=from-cli")
        expect("py-cli", r["RecordId"], b"from-cli")
        r = self.cli("put-record-batch", "--delivery-stream-name", "py-cli", "--records", json.dumps([{"Data": "cli-a"}, {"Data": "cli-b"}]))
        self.assertEqual(r["FailedPutCount"], 0)
        for data, resp in zip((b"cli-a", b"cli-b"), r["RequestResponses"]):
            expect("py-cli", resp["RecordId"], data)
        self.cli("tag-delivery-stream", "--delivery-stream-name", "py-cli", "--tags", "Key=a,Value=b")
        self.assertEqual(self.cli("list-tags-for-delivery-stream", "--delivery-stream-name", "py-cli")["Tags"], [{"Key": "a", "Value": "b"}])
        self.cli("untag-delivery-stream", "--delivery-stream-name", "py-cli", "--tag-keys", "a")
        self.cli("update-destination", "--delivery-stream-name", "py-cli", "--current-delivery-stream-version-id", "1",
                 "--destination-id", "destinationId-000000000001",
                 "--extended-s3-destination-update", json.dumps({"CompressionFormat": "GZIP"}))
        p = self.cli("describe-delivery-stream", "--delivery-stream-name", "nope", check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("ResourceNotFoundException", p.stderr)
        p = self.cli("list-delivery-streams", endpoint=SIGV4_ENDPOINT, check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("UnrecognizedClientException", p.stderr)


def tearDownModule():
    with open(EXPECT_FILE, "w") as f:
        json.dump(EXPECTED, f)


if __name__ == "__main__":
    unittest.main()
