"""Every member of the CreateDeliveryStream and UpdateDestination inputs that hydrant serves,
walked from botocore's service model and sent through boto3 to a running hydrantd: each one is
applied or refused, nothing is accepted and ignored (issue 14, part 1).

usage: members.py check ENDPOINT [PATH-SUBSTRING]   the table test (engine/tests/members.rs)
       members.py table                            the README table, made from members.txt

members.txt (beside this file) holds the two lists, one member path a line:
  applied PATH PROOF     accepted; PROOF is the test that shows delivery applies it
                         (file::function; `describe` when DescribeDeliveryStream showing it back
                         is the whole of it, as for names and ARNs)
  refused PATH NAME WHY  refused with InvalidArgumentException whose message contains NAME
A path is OPERATION.MEMBER.MEMBER...; `[]` steps into a list, `=VALUE` is one value of an enum
(each value is its own path). The walk stops at the destinations and sources hydrant does not
serve: each is one path. A path of the model in neither list, or in both, or a listed path the
model no longer has, fails the test: there is no third state.

For each path the test builds a valid request (a base configuration for the destination, the
path set to a sample value, and the companions some values need, such as CopyOptions 'gzip' for
a GZIP Redshift S3Configuration), sends it, and checks: an applied path is accepted and, where
Firehose's DescribeDeliveryStream output shape has the member, described back with the value; a
refused path gets InvalidArgumentException naming NAME. Update paths are sent to a stream
created with the base configuration of the same destination type.
"""

import copy
import json
import os
import re
import sys
import time
import uuid

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import ClientError

HERE = os.path.dirname(os.path.abspath(__file__))
WORKSPACE = os.path.dirname(os.path.dirname(HERE))
LISTS = os.path.join(HERE, "members.txt")

ROLE = "arn:aws:iam::123456789012:role/firehose"
KMS = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
# Mapped by the daemon's configuration (engine/tests/members.rs writes it).
DOMAIN = "arn:aws:es:us-east-1:123456789012:domain/members"
LAMBDA = "arn:aws:lambda:us-east-1:123456789012:function:members"
CLUSTER = "http://127.0.0.1:9/"
JDBC = "jdbc:postgresql://127.0.0.1:9/members"
URL = "http://127.0.0.1:9/ingest"

CREATE = "CreateDeliveryStream"
UPDATE = "UpdateDestination"

# The destination members hydrant serves (walked into); the other destinations and the sources
# are one path each.
SERVED = {
    "ExtendedS3DestinationConfiguration",
    "S3DestinationConfiguration",
    "RedshiftDestinationConfiguration",
    "ElasticsearchDestinationConfiguration",
    "AmazonopensearchserviceDestinationConfiguration",
    "HttpEndpointDestinationConfiguration",
    "ExtendedS3DestinationUpdate",
    "S3DestinationUpdate",
    "RedshiftDestinationUpdate",
    "ElasticsearchDestinationUpdate",
    "AmazonopensearchserviceDestinationUpdate",
    "HttpEndpointDestinationUpdate",
}
# Top-level members that are structures but whose inside is one unit (not walked).
WHOLE = {
    "KinesisStreamSourceConfiguration",
    "MSKSourceConfiguration",
    "DatabaseSourceConfiguration",
    "SplunkDestinationConfiguration",
    "AmazonOpenSearchServerlessDestinationConfiguration",
    "SnowflakeDestinationConfiguration",
    "IcebergDestinationConfiguration",
    "SplunkDestinationUpdate",
    "AmazonOpenSearchServerlessDestinationUpdate",
    "SnowflakeDestinationUpdate",
    "IcebergDestinationUpdate",
}


def s3(bucket):
    return {"RoleARN": ROLE, "BucketARN": f"arn:aws:s3:::{bucket}"}


# The smallest valid configuration of each served destination type, by its create member.
BASE = {
    "ExtendedS3DestinationConfiguration": s3("members"),
    "S3DestinationConfiguration": s3("members"),
    "RedshiftDestinationConfiguration": {
        "RoleARN": ROLE,
        "ClusterJDBCURL": JDBC,
        "CopyCommand": {"DataTableName": "events"},
        "Username": "u",
        "Password": "password-1",
        "S3Configuration": s3("members"),
    },
    "AmazonopensearchserviceDestinationConfiguration": {
        "RoleARN": ROLE,
        "ClusterEndpoint": CLUSTER,
        "IndexName": "events",
        "S3Configuration": s3("members"),
    },
    "ElasticsearchDestinationConfiguration": {
        "RoleARN": ROLE,
        "ClusterEndpoint": CLUSTER,
        "IndexName": "events",
        "S3Configuration": s3("members"),
    },
    "HttpEndpointDestinationConfiguration": {
        "EndpointConfiguration": {"Url": URL},
        "S3Configuration": s3("members"),
    },
}
CREATE_OF_UPDATE = {
    "ExtendedS3DestinationUpdate": "ExtendedS3DestinationConfiguration",
    "S3DestinationUpdate": "S3DestinationConfiguration",
    "RedshiftDestinationUpdate": "RedshiftDestinationConfiguration",
    "ElasticsearchDestinationUpdate": "ElasticsearchDestinationConfiguration",
    "AmazonopensearchserviceDestinationUpdate": "AmazonopensearchserviceDestinationConfiguration",
    "HttpEndpointDestinationUpdate": "HttpEndpointDestinationConfiguration",
}
# Where DescribeDeliveryStream shows a destination member (Destinations[0].<this>).
DESCRIPTION = {
    "ExtendedS3": "ExtendedS3DestinationDescription",
    "S3": "S3DestinationDescription",
    "Redshift": "RedshiftDestinationDescription",
    "Elasticsearch": "ElasticsearchDestinationDescription",
    "Amazonopensearchservice": "AmazonopensearchserviceDestinationDescription",
    "HttpEndpoint": "HttpEndpointDestinationDescription",
}
# Nested members whose description has another name.
NESTED_DESCRIPTION = {
    "S3Configuration": "S3DestinationDescription",
    "S3Update": "S3DestinationDescription",
    "S3BackupConfiguration": "S3BackupDescription",
    "S3BackupUpdate": "S3BackupDescription",
}

# The one processor of each type, valid as given (companion of every processor path).
PROCESSOR = {
    "Lambda": [("LambdaArn", LAMBDA), ("NumberOfRetries", "2"), ("RoleArn", ROLE),
               ("BufferSizeInMBs", "1"), ("BufferIntervalInSeconds", "60")],
    "RecordDeAggregation": [("SubRecordType", "JSON")],
    "AppendDelimiterToRecord": [("Delimiter", "Cg==")],
    "MetadataExtraction": [("MetadataExtractionQuery", "{id:.id}"), ("JsonParsingEngine", "JQ-1.6")],
    "Decompression": [("CompressionFormat", "GZIP")],
    "CloudWatchLogProcessing": [("DataMessageExtraction", "true")],
}
# The processor type that takes each parameter, and a valid value.
PARAMETER = {
    "LambdaArn": ("Lambda", LAMBDA),
    "NumberOfRetries": ("Lambda", "2"),
    "RoleArn": ("Lambda", ROLE),
    "BufferSizeInMBs": ("Lambda", "1"),
    "BufferIntervalInSeconds": ("Lambda", "60"),
    "SubRecordType": ("RecordDeAggregation", "JSON"),
    "Delimiter": ("AppendDelimiterToRecord", "Cg=="),
    "MetadataExtractionQuery": ("MetadataExtraction", "{id:.id}"),
    "JsonParsingEngine": ("MetadataExtraction", "JQ-1.6"),
    "CompressionFormat": ("Decompression", "GZIP"),
    "DataMessageExtraction": ("CloudWatchLogProcessing", "true"),
}

# Sample values by member name (strings), then by type.
STRINGS = {
    "RoleARN": ROLE,
    "BucketARN": "arn:aws:s3:::members-sample",
    "Prefix": "sample/",
    "ErrorOutputPrefix": "errors/!{firehose:error-output-type}/",
    "AWSKMSKeyARN": KMS,
    "LogGroupName": "/aws/kinesisfirehose/members",
    "LogStreamName": "DestinationDelivery",
    "FileExtension": ".log",
    "CustomTimeZone": "Europe/Berlin",
    # Record format conversion: the table engine/tests/members.rs puts in the local catalog.
    "DatabaseName": "sample",
    "TableName": "sample",
    "CatalogId": "123456789012",
    "Region": "us-east-1",
    "VersionId": "LATEST",
    "TimestampFormats": "yyyy-MM-dd HH:mm:ss",
    "ClusterJDBCURL": "jdbc:postgresql://127.0.0.1:9/sample",
    "DataTableName": "sample_table",
    "DataTableColumns": "a,b",
    "CopyOptions": "JSON 'auto'",
    "Username": "sample_user",
    "Password": "sample-password",
    "DomainARN": DOMAIN,
    "ClusterEndpoint": "http://127.0.0.1:9/sample",
    "IndexName": "sample-index",
    "TypeName": "sample_type",
    "Url": "http://127.0.0.1:9/sample",
    "Name": "sample-endpoint",
    "AccessKey": "sample-access-key",
    "AttributeName": "team",
    "AttributeValue": "data",
    "CurrentDeliveryStreamVersionId": None,  # filled in from DescribeDeliveryStream
    "DestinationId": "destinationId-000000000001",
    "DeliveryStreamName": None,  # the stream's own name
    "ParameterValue": LAMBDA,
    "Key": "team",
    "Value": "data",
    "KeyARN": KMS,
    "SubnetIds": "subnet-0123456789abcdef0",
    "SecurityGroupIds": "sg-0123456789abcdef0",
    "SecretARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:members",
}
INTEGERS = {"SizeInMBs": 2, "IntervalInSeconds": 60, "DurationInSeconds": 120,
            "ThroughputHintInMBs": 5,
            # ParquetSerDe's smallest sizes; MaxPaddingBytes: the writer does not pad.
            "BlockSizeBytes": 67108864, "PageSizeBytes": 65536, "MaxPaddingBytes": 0}

NO_RETRY = Config(retries={"max_attempts": 1, "mode": "standard"})

# Streams the walk created with an applied member: {stream name: path}.
ACCEPTED = {}


def model():
    return botocore.session.get_session().get_service_model("firehose")


def walk(shape, path, out):
    """Appends (path, leaf shape) for every leaf under `shape`; enum values are paths of their
    own."""
    if shape.type_name == "structure":
        for name, member in shape.members.items():
            walk(member, f"{path}.{name}", out)
    elif shape.type_name == "list":
        walk(shape.member, f"{path}[]", out)
    elif getattr(shape, "enum", None):
        for v in shape.enum:
            out.append((f"{path}={v}", shape))
    else:
        out.append((path, shape))


def model_paths(m):
    """{path: leaf shape} for both operations."""
    out = []
    for op in (CREATE, UPDATE):
        for name, member in m.operation_model(op).input_shape.members.items():
            p = f"{op}.{name}"
            if name in WHOLE:
                out.append((p, member))
            else:
                walk(member, p, out)
    return dict(out)


def read_lists():
    applied, refused = {}, {}
    for n, line in enumerate(open(LISTS), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 3)
        state = parts[0]
        if state == "applied" and len(parts) == 3:
            dest = applied
            value = parts[2]
        elif state == "refused" and len(parts) == 4:
            dest = refused
            value = (parts[2], parts[3])
        else:
            raise SystemExit(f"members.txt:{n}: want `applied PATH PROOF` or `refused PATH NAME WHY`: {line}")
        if parts[1] in applied or parts[1] in refused:
            raise SystemExit(f"members.txt:{n}: {parts[1]} listed twice")
        dest[parts[1]] = value
    return applied, refused


# ---------------------------------------------------------------------------------------------
# Requests

def steps(path):
    """`A.B[].C=V` -> (["A", "B", [], "C"], "V" or None)."""
    value = None
    if "=" in path:
        path, value = path.split("=", 1)
    out = []
    for part in path.split("."):
        if part.endswith("[]"):
            out.append(part[:-2])
            out.append([])
        else:
            out.append(part)
    return out, value


def sample(shape, name, enum_value):
    if enum_value is not None:
        return enum_value
    t = shape.type_name
    low = shape.metadata.get("min", 0)
    if t == "string":
        v = STRINGS.get(name, "sample")
        return v if v is None or len(v) >= low else v + "x" * (low - len(v))
    if t in ("integer", "long"):
        return max(INTEGERS.get(name, 1), low)
    if t == "boolean":
        return True
    if t == "double":
        return 0.5
    if t == "map":
        return {"sample_column": "sample_key"}
    if t == "blob":
        return b"sample"
    raise AssertionError(f"no sample for {name}: {t}")


def put(doc, route, value):
    """Sets `value` at `route` in `doc`, making structures and one-element lists on the way."""
    slot = doc
    for i, step in enumerate(route):
        last = i == len(route) - 1
        nxt = None if last else route[i + 1]
        if isinstance(step, list):
            if not slot:
                slot.append({} if not isinstance(nxt, list) and nxt is not None and not last else None)
            if last:
                slot[0] = value
                return
            if slot[0] is None:
                slot[0] = {}
            slot = slot[0]
            continue
        if last:
            slot[step] = value
            return
        if isinstance(nxt, list):
            slot = slot.setdefault(step, [])
        else:
            if not isinstance(slot.get(step), dict):
                slot[step] = {}
            slot = slot[step]


def has(doc, route, value):
    """Whether `value` is at `route` in `doc` (any element of a list)."""
    if not route:
        return doc == value
    step, rest = route[0], route[1:]
    if isinstance(step, list):
        return isinstance(doc, list) and any(has(x, rest, value) for x in doc)
    return isinstance(doc, dict) and step in doc and has(doc[step], rest, value)


def processing(ptype, params=None):
    params = params if params is not None else PROCESSOR[ptype]
    return {"Enabled": True, "Processors": [
        {"Type": ptype, "Parameters": [{"ParameterName": n, "ParameterValue": v} for n, v in params]}]}


# What a partitioned ExtendedS3 destination needs: partitioning on, a key from the
# MetadataExtraction query in Prefix, an ErrorOutputPrefix, a non-zero buffering interval.
PARTITIONED = {
    "DynamicPartitioningConfiguration": {"Enabled": True},
    "Prefix": "id=!{partitionKeyFromQuery:id}/",
    "ErrorOutputPrefix": "errors/!{firehose:error-output-type}/",
    "BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 60},
    "ProcessingConfiguration": processing("MetadataExtraction"),
}


def conversion(names):
    """A valid DataFormatConversionConfiguration around a path under it: the table sample.sample
    (in the daemon's local catalog), the deserializer and serializer of the path's branch."""
    de = {"HiveJsonSerDe": {}} if "HiveJsonSerDe" in names else {"OpenXJsonSerDe": {}}
    ser = {"OrcSerDe": {}} if "OrcSerDe" in names else {"ParquetSerDe": {}}
    return {"DataFormatConversionConfiguration": {
        "SchemaConfiguration": {"DatabaseName": "sample", "TableName": "sample", "RoleARN": ROLE},
        "InputFormatConfiguration": {"Deserializer": de},
        "OutputFormatConfiguration": {"Serializer": ser}}}


def metadata_extraction(names, enum_value):
    """Whether a ProcessingConfiguration path names the MetadataExtraction processor or one of
    its parameters."""
    if not names or names[0] != "ProcessingConfiguration":
        return False
    return enum_value == "MetadataExtraction" or \
        (names[-1] == "ParameterName" and PARAMETER.get(enum_value, ("",))[0] == "MetadataExtraction")


def companions(rel, value):
    """Members a sample value needs beside it to make a valid request, relative to the
    destination member: {member: value} merged over the base (the path's own value is set
    after, unless the companion already holds it)."""
    route, enum_value = steps(rel)
    names = [s for s in route if not isinstance(s, list)]
    if "BufferingHints" in names:
        # SizeInMBs and IntervalInSeconds go together.
        hints = {"BufferingHints": {"SizeInMBs": 2, "IntervalInSeconds": 60}}
        for outer in reversed(names[:names.index("BufferingHints")]):
            hints = {outer: hints}
        extra = {}
        merge(extra, companions(".".join(names[:names.index("BufferingHints")]), None)
              if names.index("BufferingHints") else {})
        merge(extra, hints)
        return extra
    if names and names[0] == "ProcessingConfiguration":
        leaf = names[-1]
        if leaf == "Type":
            return {"ProcessingConfiguration": processing(enum_value)}
        if leaf == "ParameterName":
            ptype, v = PARAMETER[enum_value]
            params = [(n, x) for n, x in PROCESSOR[ptype] if n != enum_value] + [(enum_value, v)]
            return {"ProcessingConfiguration": processing(ptype, params)}
        return {"ProcessingConfiguration": processing("Lambda")}
    if names[:1] == ["DynamicPartitioningConfiguration"]:
        return PARTITIONED
    if names[:1] == ["DataFormatConversionConfiguration"]:
        return conversion(names)
    if names[:1] in (["S3BackupConfiguration"], ["S3BackupUpdate"]):
        return {"S3BackupMode": "Enabled", names[0]: s3("members-backup")}
    if names and names[-1] == "Enabled" and names[0] == "CloudWatchLoggingOptions":
        return {"CloudWatchLoggingOptions": {"Enabled": True, "LogGroupName": "/aws/kinesisfirehose/m",
                                             "LogStreamName": "DestinationDelivery"}}
    return {}




def dest_companions(dest_member, rel, value):
    """Companions that depend on the destination type."""
    route, enum_value = steps(rel)
    names = [s for s in route if not isinstance(s, list)]
    extra = {}
    if dest_member.startswith("ExtendedS3") and metadata_extraction(names, enum_value):
        # MetadataExtraction only with dynamic partitioning (the processor comes from companions).
        extra.update({k: v for k, v in PARTITIONED.items() if k != "ProcessingConfiguration"})
    if dest_member.startswith("Redshift") and names[:2] in (["S3Configuration", "CompressionFormat"],
                                                             ["S3Update", "CompressionFormat"]):
        # COPY reads a GZIP intermediate object only when told so.
        if enum_value == "GZIP":
            extra["CopyCommand"] = {"DataTableName": "events", "CopyOptions": "gzip"}
    if names == ["S3BackupMode"] and enum_value == "Enabled":
        extra["S3BackupConfiguration" if "Update" not in dest_member else "S3BackupUpdate"] = s3("members-backup")
    if (dest_member.startswith("Amazonopensearchservice") or dest_member.startswith("Elasticsearch")) \
            and names[:1] == ["DomainARN"]:
        extra["ClusterEndpoint"] = None
    if (dest_member.startswith("Amazonopensearchservice") or dest_member.startswith("Elasticsearch")) \
            and names[:1] == ["ClusterEndpoint"]:
        extra["DomainARN"] = None
    if names[:1] == ["VpcConfiguration"]:
        extra["VpcConfiguration"] = {"SubnetIds": ["subnet-0123456789abcdef0"], "RoleARN": ROLE,
                                     "SecurityGroupIds": ["sg-0123456789abcdef0"]}
    if names[:1] == ["SecretsManagerConfiguration"]:
        extra["SecretsManagerConfiguration"] = {
            "Enabled": True, "RoleARN": ROLE,
            "SecretARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:members"}
    return extra


def merge(into, extra):
    for k, v in extra.items():
        if v is None:
            into.pop(k, None)
        elif isinstance(v, dict) and isinstance(into.get(k), dict):
            merge(into[k], v)
        else:
            into[k] = copy.deepcopy(v)


# A stream read from a Kinesis data stream needs both the type and the source configuration.
KINESIS_SOURCE = {
    "KinesisStreamARN": "arn:aws:kinesis:us-east-1:123456789012:stream/members",
    "RoleARN": ROLE,
}


# A stream read from an MSK (Kafka) topic likewise (the members daemon maps no cluster: the
# stream is created and its source described as failed).
MSK_SOURCE = {
    "MSKClusterARN": "arn:aws:kafka:us-east-1:123456789012:cluster/members/1",
    "TopicName": "members",
    "AuthenticationConfiguration": {"RoleARN": ROLE, "Connectivity": "PRIVATE"},
}


def request_for(path, shape, name):
    """(operation, destination create member or None, kwargs, route within kwargs, value)."""
    op, dest_member, kwargs, route, value = request_for_member(path, shape, name)
    if op == CREATE and (route[0] == "KinesisStreamSourceConfiguration"
                         or kwargs.get("DeliveryStreamType") == "KinesisStreamAsSource"):
        kwargs["DeliveryStreamType"] = "KinesisStreamAsSource"
        kwargs["KinesisStreamSourceConfiguration"] = dict(KINESIS_SOURCE)
    if op == CREATE and (route[0] == "MSKSourceConfiguration"
                         or kwargs.get("DeliveryStreamType") == "MSKAsSource"):
        kwargs["DeliveryStreamType"] = "MSKAsSource"
        kwargs["MSKSourceConfiguration"] = copy.deepcopy(MSK_SOURCE)
    return op, dest_member, kwargs, route, value


def request_for_member(path, shape, name):
    """request_for, before the source's companions."""
    op, rest = path.split(".", 1)
    route, enum_value = steps(rest)
    leaf_name = [s for s in route if not isinstance(s, list)][-1]
    value = None if route[0] in WHOLE else sample(shape, leaf_name, enum_value)
    top = route[0]
    if op == CREATE:
        kwargs = {"DeliveryStreamName": name}
        dest_member = top if top in BASE else "ExtendedS3DestinationConfiguration"
        if top in WHOLE:
            kwargs[top] = minimal(shape, top)
            if top.endswith("SourceConfiguration"):
                kwargs[dest_member] = copy.deepcopy(BASE[dest_member])
            return op, None, kwargs, route, None
        if top not in BASE:
            kwargs[dest_member] = copy.deepcopy(BASE[dest_member])
    else:
        kwargs = {"DeliveryStreamName": name, "CurrentDeliveryStreamVersionId": None,
                  "DestinationId": "destinationId-000000000001"}
        dest_member = CREATE_OF_UPDATE.get(top, "ExtendedS3DestinationConfiguration")
        if top in WHOLE:
            kwargs[top] = minimal(shape, top)
            return op, dest_member, kwargs, route, None
        if top not in CREATE_OF_UPDATE:
            kwargs["ExtendedS3DestinationUpdate"] = {"Prefix": "p/"}
    if top in BASE or top in CREATE_OF_UPDATE:
        rel_route = route[1:]
        rel = rest.split(".", 1)[1] if "." in rest else ""
        body = copy.deepcopy(BASE[top]) if op == CREATE else {}
        merge(body, companions(rel, value))
        merge(body, dest_companions(top, rel, value))
        if not has(body, rel_route, value):
            put(body, rel_route, value)
        kwargs[top] = body
    elif top == "DeliveryStreamName":
        value = name
    elif top in ("CurrentDeliveryStreamVersionId",):
        value = None
    else:
        put(kwargs, route, value)
    return op, dest_member, kwargs, route, value


def minimal(shape, name):
    """A sample value of member `name` of `shape` with its required members only."""
    if shape.type_name == "structure":
        return {n: minimal(shape.members[n], n) for n in shape.required_members}
    if shape.type_name == "list":
        return [minimal(shape.member, name)]
    enum = getattr(shape, "enum", None)
    return sample(shape, name, enum[0] if enum else None)


def complete(shape, doc):
    """Adds the required members missing from the structures of `doc` (a request as built),
    so that boto3's own validation passes and the request is valid."""
    if shape.type_name == "structure" and isinstance(doc, dict):
        for n in shape.required_members:
            if n not in doc:
                doc[n] = minimal(shape.members[n], n)
        for n, v in doc.items():
            if n in shape.members:
                complete(shape.members[n], v)
    elif shape.type_name == "list" and isinstance(doc, list):
        for x in doc:
            complete(shape.member, x)


# ---------------------------------------------------------------------------------------------
# The check

def client(endpoint):
    return boto3.client("firehose", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret",
                        config=NO_RETRY)


def described(fh, name):
    deadline = time.time() + 30
    while True:
        d = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
        if d["DeliveryStreamStatus"] == "ACTIVE":
            return d
        assert time.time() < deadline, d
        time.sleep(0.02)


def description_route(m, dest_route):
    """The description route of a destination route (create or update member first), and
    whether Firehose's output shape has it (else None)."""
    top = dest_route[0]
    kind = re.sub(r"Destination(Configuration|Update)$", "", top)
    out = [DESCRIPTION[kind]]
    for step in dest_route[1:]:
        out.append(step if isinstance(step, list) else NESTED_DESCRIPTION.get(step, step))
    shape = m.shape_for("DestinationDescription")
    for step in out:
        if isinstance(step, list):
            if shape.type_name != "list":
                return None
            shape = shape.member
            continue
        if shape.type_name != "structure" or step not in shape.members:
            return None
        shape = shape.members[step]
    return out


def check(endpoint, only=None):
    m = model()
    paths = model_paths(m)
    applied, refused = read_lists()
    problems = []
    for p in sorted(paths):
        if p not in applied and p not in refused:
            problems.append(f"UNCLASSIFIED {p}: add it to members.txt as applied (with the test "
                            f"that proves it) or refused (and refuse it in the daemon)")
    for p in sorted(set(applied) | set(refused)):
        if p not in paths:
            problems.append(f"STALE {p}: listed in members.txt but not in botocore's model")
    for p, proof in sorted(applied.items()):
        if proof == "describe":
            continue
        f, _, fn = proof.partition("::")
        src = os.path.join(WORKSPACE, f)
        if not os.path.isfile(src) or not re.search(rf"\b(fn|def) {re.escape(fn)}\b", open(src).read()):
            problems.append(f"PROOF {p}: {proof} names no test")
    fh = client(endpoint)
    checked = {"applied": 0, "refused": 0}
    for p in sorted(paths):
        if only and only not in p:
            continue
        if p not in applied and p not in refused:
            continue
        try:
            err = one(m, fh, p, paths[p], p in applied, refused.get(p, (None,))[0])
        except Exception as e:  # a failure of one path is reported with the others
            err = f"{type(e).__name__}: {e}"
        if err:
            problems.append(f"{'APPLIED' if p in applied else 'REFUSED'} {p}: {err}")
        else:
            checked["applied" if p in applied else "refused"] += 1
    # An accepted configuration whose delivery cannot start is not applied: the daemon's log
    # (HYDRANT_LOG_FILE) must not say so of any stream the walk created.
    log_file = os.environ.get("HYDRANT_LOG_FILE")
    if log_file:
        text = re.sub(r"\x1b\[[0-9;]*m", "", open(log_file, errors="replace").read())
        for line in text.splitlines():
            if "delivery cannot start" in line:
                for name, p in ACCEPTED.items():
                    if f"stream={name} " in line + " ":
                        problems.append(f"APPLIED {p}: accepted, but delivery cannot start: {line}")
    print(json.dumps({"paths": len(paths), "applied": len(applied), "refused": len(refused),
                      "checked": checked}))
    for x in problems:
        print(x)
    return not problems


def one(m, fh, path, shape, is_applied, named):
    name = "m-" + uuid.uuid4().hex[:16]
    op, dest_member, kwargs, route, value = request_for(path, shape, name)
    try:
        if op == UPDATE:
            base = {"DeliveryStreamName": name, dest_member: copy.deepcopy(BASE[dest_member])}
            if route[0] in CREATE_OF_UPDATE:
                base_extra = update_base_companions(route, kwargs[route[0]])
                merge(base[dest_member], base_extra)
            fh.create_delivery_stream(**base)
            d = described(fh, name)
            kwargs["CurrentDeliveryStreamVersionId"] = d["VersionId"]
            if route[0] == "CurrentDeliveryStreamVersionId":
                value = d["VersionId"]
            call = fh.update_destination
        else:
            call = fh.create_delivery_stream
        complete(m.operation_model(op).input_shape, kwargs)
        try:
            call(**kwargs)
        except ClientError as e:
            code = e.response["Error"]["Code"]
            msg = e.response["Error"].get("Message", "")
            if is_applied:
                return f"refused: {code}: {msg} (request {json.dumps(kwargs, default=str)})"
            if code != "InvalidArgumentException":
                return f"refused with {code}, not InvalidArgumentException: {msg}"
            if named not in msg:
                return f"the refusal does not name {named}: {msg}"
            return None
        if not is_applied:
            return f"accepted, but listed as refused (request {json.dumps(kwargs, default=str)})"
        ACCEPTED[name] = path
        d = described(fh, name)
        if op == UPDATE and d["VersionId"] == kwargs["CurrentDeliveryStreamVersionId"]:
            return "the update did not change the version"
        top = route[0]
        if top in BASE or top in CREATE_OF_UPDATE:
            desc = description_route(m, route)
            if desc is not None:
                got = d["Destinations"][0]
                if not has(got, desc, value):
                    return (f"not described back: want {value!r} at {'.'.join(map(str, desc))}; "
                            f"got {json.dumps(got, default=str)}")
        elif top == "Tags":
            tags = fh.list_tags_for_delivery_stream(DeliveryStreamName=name)["Tags"]
            if not has(tags, route[1:], value):
                return f"not in ListTagsForDeliveryStream: {tags}"
        elif top == "DeliveryStreamType":
            if d["DeliveryStreamType"] != value:
                return f"DeliveryStreamType {d['DeliveryStreamType']}"
        return None
    finally:
        try:
            fh.delete_delivery_stream(DeliveryStreamName=name, AllowForceDelete=True)
        except ClientError:
            pass


def update_base_companions(route, body):
    """What the stream an update is sent to needs beforehand: the backup mode of an OpenSearch,
    Elasticsearch or HTTP endpoint destination cannot change after create (in Firehose too), so
    the stream is created with the mode the update names; an update to DomainARN goes to a
    stream addressed by DomainARN."""
    extra = {}
    names = [x for x in route[1:] if not isinstance(x, list)]
    if route[0] == "ExtendedS3DestinationUpdate" and body.get("DynamicPartitioningConfiguration"):
        # Partitioning cannot be turned on or off by an update: the stream starts partitioned.
        merge(extra, PARTITIONED)
    mode = body.get("S3BackupMode")
    if mode and not route[0].startswith(("ExtendedS3", "S3Destination", "Redshift")):
        extra["S3BackupMode"] = mode
    if names[:1] == ["DomainARN"]:
        extra["DomainARN"] = DOMAIN
        extra["ClusterEndpoint"] = None
    return extra


# ---------------------------------------------------------------------------------------------
# The README table

def short(top):
    return re.sub(r"Destination(Configuration|Update)$", "", top)


def table():
    """README's table: one row per member path inside the destinations (create and update, all
    served types together), a structure or enum whose every path shares one state, proof and set
    of destinations standing for all of them."""
    applied, refused = read_lists()
    rows = {}
    entries = [(p, "applied", proof, "") for p, proof in applied.items()] + \
              [(p, "refused", named, why) for p, (named, why) in refused.items()]
    for p, state, note, why in entries:
        _, rest = p.split(".", 1)
        top, _, rel = rest.partition(".")
        if top.split("[")[0].split("=")[0] in SERVED:
            where = short(top)
            rel = re.sub(r"\bS3Update\b", "S3Configuration", rel)
            rel = re.sub(r"\bS3BackupUpdate\b", "S3BackupConfiguration", rel)
        else:
            where, rel = "request", rest
        rows.setdefault(rel, {}).setdefault((state, note, why), set()).add(where)
    leaves = {rel: frozenset((k, frozenset(w)) for k, w in v.items()) for rel, v in rows.items()}

    def parts(rel):
        return re.findall(r"=[^.]*|[^.=]+", rel)

    tree = {}
    for rel in leaves:
        node = tree
        for part in parts(rel):
            node = node.setdefault(part, {})
        node[None] = rel

    def values(node):
        out = set()
        for k, child in node.items():
            out |= {leaves[child]} if k is None else values(child)
        return out

    out = ["| member (and all inside it) | in | state | proof, or what the refusal names |",
           "| --- | --- | --- | --- |"]

    def emit(node, path):
        vals = values(node)
        if len(vals) == 1:
            for (state, note, why), where in sorted(next(iter(vals))):
                detail = f"`{note}`" if state == "applied" else f"`{note}`: {why}"
                out.append(f"| `{path}` | {', '.join(sorted(where))} | {state} | {detail} |")
            return
        for k in sorted(x for x in node if x is not None):
            emit(node[k], f"{path}{'' if k.startswith('=') or not path else '.'}{k}")
        if None in node:
            emit({None: node[None]}, path)

    for k in sorted(tree):
        emit(tree[k], k)
    return "\n".join(out) + "\n"


def main():
    if sys.argv[1:2] == ["table"]:
        sys.stdout.write(table())
        return
    if sys.argv[1:2] == ["paths"]:
        for p in sorted(model_paths(model())):
            print(p)
        return
    if sys.argv[1:2] == ["show"]:
        m = model()
        for p, shape in sorted(model_paths(m).items()):
            if sys.argv[2] in p:
                op, _, kwargs, _, value = request_for(p, shape, "name")
                complete(m.operation_model(op).input_shape, kwargs)
                print(p, json.dumps(kwargs, default=str))
        return
    endpoint = sys.argv[2]
    only = sys.argv[3] if len(sys.argv) > 3 else None
    sys.exit(0 if check(endpoint, only) else 1)


if __name__ == "__main__":
    main()
