"""boto3 side of the destination tests (engine/tests/destinations.rs).

usage: destinations.py ENDPOINT PLAN.json OUT.json

PLAN.json: {"create": [{"name", "member", "config"}],          streams to create (must succeed)
            "refuse": [{"name", "member", "config", "why"}],    creates that must fail with
                                                                 InvalidArgumentException
            "put": [{"name", "records": [str, ...]}]}           records to send (PutRecordBatch)
OUT.json gets {"described": {name: DeliveryStreamDescription}, "refused": {why: message},
               "acked": [{"stream", "data", "record_id"}]}.
"""
import json
import sys
import time

import boto3
from botocore.exceptions import ClientError


def main():
    endpoint, plan_path, out_path = sys.argv[1:4]
    plan = json.load(open(plan_path))
    fh = boto3.client(
        "firehose",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
    )
    out = {"described": {}, "refused": {}, "acked": []}
    for s in plan.get("refuse", []):
        try:
            fh.create_delivery_stream(DeliveryStreamName=s["name"], **{s["member"]: s["config"]})
        except ClientError as e:
            code = e.response["Error"]["Code"]
            assert code == "InvalidArgumentException", (s["why"], code, e)
            out["refused"][s["why"]] = e.response["Error"]["Message"]
        else:
            raise AssertionError("create accepted: " + s["why"])
    for s in plan.get("create", []):
        fh.create_delivery_stream(DeliveryStreamName=s["name"], **{s["member"]: s["config"]})
    for s in plan.get("create", []):
        deadline = time.time() + 30
        while True:
            d = fh.describe_delivery_stream(DeliveryStreamName=s["name"])["DeliveryStreamDescription"]
            if d["DeliveryStreamStatus"] == "ACTIVE":
                break
            assert time.time() < deadline, d
            time.sleep(0.05)
        d.pop("CreateTimestamp", None)
        d.pop("LastUpdateTimestamp", None)
        out["described"][s["name"]] = d
    for p in plan.get("put", []):
        records = p["records"]
        for i in range(0, len(records), 500):
            chunk = records[i:i + 500]
            r = fh.put_record_batch(
                DeliveryStreamName=p["name"],
                Records=[{"Data": x.encode()} for x in chunk],
            )
            assert r["FailedPutCount"] == 0, r
            for x, e in zip(chunk, r["RequestResponses"]):
                out["acked"].append({"stream": p["name"], "data": x, "record_id": e["RecordId"]})
    json.dump(out, open(out_path, "w"))


if __name__ == "__main__":
    main()
