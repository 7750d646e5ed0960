"""The Kinesis source's producer and API checks, with boto3 against kinesalite and hydrantd.

usage: kinesis_source.py HYDRANT_ENDPOINT KINESIS_ENDPOINT PLAN.json OUT.json

PLAN: {"stream": delivery stream, "kinesis_stream": name, "records": N, "keys": K,
       "reshard": true|false, "bucket": name}
Steps: create a 4-shard Kinesis stream; put records before the delivery stream exists (they
must not be delivered: reading starts at DeliveryStartTimestamp); create the delivery stream
(KinesisStreamAsSource); check DescribeDeliveryStream, ListDeliveryStreams and the refusal of
PutRecord / PutRecordBatch against Firehose's shapes; put N records over K partition keys with
PutRecords, splitting one shard after a third and merging two adjacent shards after two thirds;
write what was sent to OUT.

PLAN may also hold "phase": "setup" (the streams and the API checks only) or "load" (the puts
only, to a stream a setup made), and "pace_s" (a pause after each PutRecords of 500),
"pad" (bytes of padding in each record).
"""
import json
import sys
import time

import boto3
import botocore

hydrant, kinesis_ep, plan_path, out_path = sys.argv[1:5]
plan = json.load(open(plan_path))
creds = dict(region_name="us-east-1", aws_access_key_id="K", aws_secret_access_key="S")
fh = boto3.client("firehose", endpoint_url=hydrant, **creds)
ks = boto3.client("kinesis", endpoint_url=kinesis_ep, **creds)
out = {"checks": []}


def check(name, cond, detail=""):
    if not cond:
        raise SystemExit(f"check failed: {name}: {detail}")
    out["checks"].append(name)


def wait_stream_active(name):
    for _ in range(200):
        d = ks.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
        if d["StreamStatus"] == "ACTIVE":
            return
        time.sleep(0.05)
    raise SystemExit(f"kinesis stream {name} not ACTIVE")


stream = plan["stream"]
kname = plan["kinesis_stream"]
phase = plan.get("phase", "all")
role = "arn:aws:iam::123456789012:role/firehose"


def setup():
    ks.create_stream(StreamName=kname, ShardCount=4)
    wait_stream_active(kname)
    arn = ks.describe_stream_summary(StreamName=kname)["StreamDescriptionSummary"]["StreamARN"]
    out["kinesis_arn"] = arn

    # Records before the delivery stream exists: not delivered.
    before = [{"Data": json.dumps({"k": f"k{i % 7}", "before": i}) + "\n", "PartitionKey": f"k{i % 7}"}
              for i in range(50)]
    ks.put_records(StreamName=kname, Records=before)
    time.sleep(1.2)

    role = "arn:aws:iam::123456789012:role/firehose"
    fh.create_delivery_stream(
        DeliveryStreamName=stream,
        DeliveryStreamType="KinesisStreamAsSource",
        KinesisStreamSourceConfiguration={"KinesisStreamARN": arn, "RoleARN": role},
        ExtendedS3DestinationConfiguration={
            "RoleARN": role,
            "BucketARN": f"arn:aws:s3:::{plan['bucket']}",
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1},
            "CompressionFormat": "UNCOMPRESSED",
        },
    )
    for _ in range(100):
        d = fh.describe_delivery_stream(DeliveryStreamName=stream)["DeliveryStreamDescription"]
        if d["DeliveryStreamStatus"] == "ACTIVE":
            break
        time.sleep(0.1)
    check("active", d["DeliveryStreamStatus"] == "ACTIVE", d)
    check("type", d["DeliveryStreamType"] == "KinesisStreamAsSource", d)
    src = d["Source"]["KinesisStreamSourceDescription"]
    check("source arn", src["KinesisStreamARN"] == arn, src)
    check("source role", src["RoleARN"] == role, src)
    # botocore parses the timestamp: it is a datetime close to the creation time.
    check("start timestamp", abs(src["DeliveryStartTimestamp"].timestamp() - d["CreateTimestamp"].timestamp()) < 1, src)
    check("no failure", "FailureDescription" not in d, d)

    names = fh.list_delivery_streams(DeliveryStreamType="KinesisStreamAsSource")["DeliveryStreamNames"]
    check("listed as kinesis", stream in names, names)
    names = fh.list_delivery_streams(DeliveryStreamType="DirectPut")["DeliveryStreamNames"]
    check("not listed as direct put", stream not in names, names)

    for op, call in [
        ("PutRecord", lambda: fh.put_record(DeliveryStreamName=stream, Record={"Data": b"x"})),
        ("PutRecordBatch", lambda: fh.put_record_batch(DeliveryStreamName=stream, Records=[{"Data": b"x"}])),
    ]:
        try:
            call()
            raise SystemExit(f"{op} on a KinesisStreamAsSource stream was accepted")
        except botocore.exceptions.ClientError as e:
            err = e.response["Error"]
            check(f"{op} refused", err["Code"] == "InvalidArgumentException"
                  and err["Message"] == "This operation is not permitted on KinesisStreamAsSource delivery stream type.", err)

    # Configuration without the type, and the type without the configuration: refused by name.
    for kwargs in [
        {"KinesisStreamSourceConfiguration": {"KinesisStreamARN": arn, "RoleARN": role}},
        {"DeliveryStreamType": "KinesisStreamAsSource"},
    ]:
        try:
            fh.create_delivery_stream(DeliveryStreamName="bad-" + stream, **kwargs,
                                      ExtendedS3DestinationConfiguration={"RoleARN": role, "BucketARN": "arn:aws:s3:::b"})
            raise SystemExit(f"create with {kwargs} accepted")
        except botocore.exceptions.ClientError as e:
            err = e.response["Error"]
            check("mismatched source refused", err["Code"] == "InvalidArgumentException"
                  and "KinesisStreamSourceConfiguration" in err["Message"], err)



if phase in ("all", "setup"):
    setup()
    if phase == "setup":
        json.dump(out, open(out_path, "w"))
        sys.exit(0)

# The load.
n, keys = plan["records"], plan["keys"]
counters = [0] * keys
sent = 0
resharded = []
batch = []


def flush():
    global batch
    recs = batch
    batch = []
    while recs:
        r = ks.put_records(StreamName=kname, Records=recs)
        failed = [rec for rec, res in zip(recs, r["Records"]) if "ErrorCode" in res]
        recs = failed


def open_shards():
    shards = ks.list_shards(StreamName=kname)["Shards"]
    return [s for s in shards if "EndingSequenceNumber" not in s["SequenceNumberRange"]]


for i in range(n):
    k = i % keys
    rec = {"k": f"key{k}", "i": counters[k]}
    if plan.get("pad"):
        rec["pad"] = "x" * plan["pad"]
    batch.append({"Data": json.dumps(rec) + "\n", "PartitionKey": f"key{k}"})
    counters[k] += 1
    sent += 1
    if len(batch) == 500:
        flush()
        time.sleep(plan.get("pace_s", 0))
    if plan["reshard"] and i == n // 3:
        flush()
        s = open_shards()[0]
        lo, hi = int(s["HashKeyRange"]["StartingHashKey"]), int(s["HashKeyRange"]["EndingHashKey"])
        ks.split_shard(StreamName=kname, ShardToSplit=s["ShardId"], NewStartingHashKey=str((lo + hi) // 2))
        wait_stream_active(kname)
        resharded.append(("split", s["ShardId"]))
    if plan["reshard"] and i == 2 * n // 3:
        flush()
        shards = sorted(open_shards(), key=lambda s: int(s["HashKeyRange"]["StartingHashKey"]))
        a, b = shards[-2], shards[-1]
        ks.merge_shards(StreamName=kname, ShardToMerge=a["ShardId"], AdjacentShardToMerge=b["ShardId"])
        wait_stream_active(kname)
        resharded.append(("merge", a["ShardId"], b["ShardId"]))
flush()
out["sent"] = sent
out["per_key"] = {f"key{k}": counters[k] for k in range(keys)}
out["resharded"] = resharded
out["shards_after"] = [s["ShardId"] for s in ks.list_shards(StreamName=kname)["Shards"]]
json.dump(out, open(out_path, "w"))
