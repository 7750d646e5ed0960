"""boto3 against hydrantd for the Kafka (MSK) source's tests (engine/tests/msk_*.rs).

usage: msk_source.py HYDRANT_ENDPOINT create NAME CLUSTER_ARN TOPIC BUCKET [READ_FROM_SECONDS]
       msk_source.py HYDRANT_ENDPOINT check NAME CLUSTER_ARN TOPIC
       msk_source.py HYDRANT_ENDPOINT describe NAME

`create` makes an MSKAsSource stream into the local object store and prints its description;
`check` asserts the API's shapes and refusals for it (Describe's Source.MSKSourceDescription,
PutRecord and PutRecordBatch refused as Firehose refuses them, ListDeliveryStreams by type, a
configuration without its type refused) and prints {"ok": true}; `describe` prints the
description.
"""
import json
import sys
import time

import boto3
import botocore

ROLE = "arn:aws:iam::123456789012:role/firehose"


def client(endpoint):
    return boto3.client("firehose", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="K", aws_secret_access_key="S",
                        config=botocore.config.Config(retries={"max_attempts": 1}))


def describe(fh, name):
    return fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]


def check(what, ok, detail=None):
    if not ok:
        raise SystemExit(f"{what}: {detail}")


def create(fh, name, arn, topic, bucket, read_from):
    source = {"MSKClusterARN": arn, "TopicName": topic,
              "AuthenticationConfiguration": {"RoleARN": ROLE, "Connectivity": "PRIVATE"}}
    if read_from is not None:
        source["ReadFromTimestamp"] = read_from
    fh.create_delivery_stream(
        DeliveryStreamName=name,
        DeliveryStreamType="MSKAsSource",
        MSKSourceConfiguration=source,
        ExtendedS3DestinationConfiguration={
            "RoleARN": ROLE,
            "BucketARN": f"arn:aws:s3:::{bucket}",
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1},
            "CompressionFormat": "UNCOMPRESSED",
        },
    )
    for _ in range(100):
        d = describe(fh, name)
        if d["DeliveryStreamStatus"] == "ACTIVE":
            break
        time.sleep(0.1)
    check("active", d["DeliveryStreamStatus"] == "ACTIVE", d)
    return d


def refused(call, code, text):
    try:
        call()
    except botocore.exceptions.ClientError as e:
        err = e.response["Error"]
        check(f"{code} with {text!r}", err["Code"] == code and text in err["Message"], err)
        return
    raise SystemExit(f"accepted, but {code} was expected")


def check_api(fh, name, arn, topic):
    d = describe(fh, name)
    check("type", d["DeliveryStreamType"] == "MSKAsSource", d)
    src = d["Source"]["MSKSourceDescription"]
    check("cluster", src["MSKClusterARN"] == arn, src)
    check("topic", src["TopicName"] == topic, src)
    check("auth", src["AuthenticationConfiguration"] == {"RoleARN": ROLE, "Connectivity": "PRIVATE"}, src)
    for t in ("DeliveryStartTimestamp", "ReadFromTimestamp"):
        check(t, hasattr(src[t], "timestamp") and src[t].timestamp() > 1.6e9, src)
    msg = "This operation is not permitted on MSKAsSource delivery stream type."
    refused(lambda: fh.put_record(DeliveryStreamName=name, Record={"Data": b"x"}),
            "InvalidArgumentException", msg)
    refused(lambda: fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": b"x"}]),
            "InvalidArgumentException", msg)
    names = fh.list_delivery_streams(DeliveryStreamType="MSKAsSource")["DeliveryStreamNames"]
    check("listed as MSKAsSource", name in names, names)
    names = fh.list_delivery_streams(DeliveryStreamType="DirectPut")["DeliveryStreamNames"]
    check("not listed as DirectPut", name not in names, names)
    source = {"MSKClusterARN": arn, "TopicName": topic,
              "AuthenticationConfiguration": {"RoleARN": ROLE, "Connectivity": "PUBLIC"}}
    dest = {"RoleARN": ROLE, "BucketARN": "arn:aws:s3:::b"}
    refused(lambda: fh.create_delivery_stream(DeliveryStreamName="bad-" + name,
                                              MSKSourceConfiguration=source,
                                              ExtendedS3DestinationConfiguration=dest),
            "InvalidArgumentException", "MSKSourceConfiguration")
    refused(lambda: fh.create_delivery_stream(DeliveryStreamName="bad-" + name,
                                              DeliveryStreamType="MSKAsSource",
                                              ExtendedS3DestinationConfiguration=dest),
            "InvalidArgumentException", "MSKSourceConfiguration")
    bad = dict(source, AuthenticationConfiguration={"RoleARN": ROLE, "Connectivity": "VPC"})
    refused(lambda: fh.create_delivery_stream(DeliveryStreamName="bad-" + name,
                                              DeliveryStreamType="MSKAsSource",
                                              MSKSourceConfiguration=bad,
                                              ExtendedS3DestinationConfiguration=dest),
            "InvalidArgumentException", "connectivity")


def main():
    endpoint, op, name = sys.argv[1], sys.argv[2], sys.argv[3]
    fh = client(endpoint)
    if op == "create":
        arn, topic, bucket = sys.argv[4], sys.argv[5], sys.argv[6]
        read_from = float(sys.argv[7]) if len(sys.argv) > 7 else None
        print(json.dumps(create(fh, name, arn, topic, bucket, read_from), default=str))
    elif op == "check":
        check_api(fh, name, sys.argv[4], sys.argv[5])
        print(json.dumps({"ok": True}))
    elif op == "describe":
        print(json.dumps(describe(fh, name), default=str))
    else:
        raise SystemExit(f"unknown operation {op}")


if __name__ == "__main__":
    main()
