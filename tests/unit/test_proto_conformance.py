"""Our generated ext_proc stubs are wire-compatible with Envoy's official definitions
(envoy-data-plane's types are generated from the upstream data-plane-api protos)."""

from __future__ import annotations

import datetime

import betterproto2

from envoy_data_plane.envoy.config.core import v3 as official_core
from envoy_data_plane.envoy.extensions.filters.http.ext_proc import v3 as official_mode
from envoy_data_plane.envoy.service.ext_proc import v3 as official
from envoy_data_plane.envoy.type import v3 as official_type

from router_extproc._proto.envoy.config.core.v3 import base_pb2
from router_extproc._proto.envoy.extensions.filters.http.ext_proc.v3 import processing_mode_pb2
from router_extproc._proto.envoy.service.ext_proc.v3 import external_processor_pb2 as pb
from router_extproc.server import SERVICE_NAME


def test_service_full_name_matches_envoy():
    assert pb.DESCRIPTOR.services_by_name["ExternalProcessor"].full_name == SERVICE_NAME
    method = pb.DESCRIPTOR.services_by_name["ExternalProcessor"].methods_by_name["Process"]
    assert method.client_streaming and method.server_streaming


def test_request_headers_sent_by_envoy_parse_in_our_types():
    sent = official.ProcessingRequest(
        request_headers=official.HttpHeaders(
            headers=official_core.HeaderMap(headers=[
                official_core.HeaderValue(key=":path", raw_value=b"/v1/chat/completions"),
                official_core.HeaderValue(key="authorization", value="Bearer t"),
            ]),
            end_of_stream=False,
        ),
        observability_mode=False,
        protocol_config=official.ProtocolConfiguration(
            request_body_mode=official_mode.ProcessingModeBodySendMode.BUFFERED),
    )
    ours = pb.ProcessingRequest.FromString(bytes(sent))
    assert ours.WhichOneof("request") == "request_headers"
    hs = ours.request_headers.headers.headers
    assert (hs[0].key, hs[0].raw_value) == (":path", b"/v1/chat/completions")
    assert (hs[1].key, hs[1].value) == ("authorization", "Bearer t")
    assert ours.protocol_config.request_body_mode == processing_mode_pb2.ProcessingMode.BUFFERED


def test_request_and_response_bodies_parse_in_our_types():
    for field in ("request_body", "response_body"):
        sent = official.ProcessingRequest(**{field: official.HttpBody(body=b'{"a":1}', end_of_stream=True)})
        ours = pb.ProcessingRequest.FromString(bytes(sent))
        assert ours.WhichOneof("request") == field
        assert getattr(ours, field).body == b'{"a":1}'
        assert getattr(ours, field).end_of_stream


def test_body_rewrite_we_send_is_what_envoy_reads():
    ours = pb.ProcessingResponse(
        request_body=pb.BodyResponse(response=pb.CommonResponse(
            header_mutation=pb.HeaderMutation(
                set_headers=[base_pb2.HeaderValueOption(
                    header=base_pb2.HeaderValue(key="x-selected-model", raw_value=b"qwen3-8b"),
                    append_action=base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD)],
                remove_headers=["x-router-cache"]),
            body_mutation=pb.BodyMutation(body=b'{"model":"qwen3-8b"}'),
            clear_route_cache=True,
        )),
        mode_override=processing_mode_pb2.ProcessingMode(
            response_body_mode=processing_mode_pb2.ProcessingMode.STREAMED),
    )
    theirs = official.ProcessingResponse.parse(ours.SerializeToString())
    common = theirs.request_body.response
    assert common.clear_route_cache is True
    assert common.body_mutation.body == b'{"model":"qwen3-8b"}'
    opt = common.header_mutation.set_headers[0]
    assert (opt.header.key, opt.header.raw_value) == ("x-selected-model", b"qwen3-8b")
    assert opt.append_action == official_core.HeaderValueOptionHeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD
    assert common.header_mutation.remove_headers == ["x-router-cache"]
    assert theirs.mode_override.response_body_mode == official_mode.ProcessingModeBodySendMode.STREAMED


def test_immediate_response_we_send_is_what_envoy_reads():
    ours = pb.ProcessingResponse(immediate_response=pb.ImmediateResponse(
        status={"code": 413}, body=b'{"error":{}}', details="too_large",
        headers=pb.HeaderMutation(set_headers=[base_pb2.HeaderValueOption(
            header=base_pb2.HeaderValue(key="content-type", raw_value=b"application/json"))])))
    theirs = official.ProcessingResponse.parse(ours.SerializeToString())
    assert theirs.immediate_response.status.code == official_type.StatusCode.PayloadTooLarge
    assert theirs.immediate_response.body == b'{"error":{}}'
    assert theirs.immediate_response.details == "too_large"
    assert theirs.immediate_response.headers.set_headers[0].header.raw_value == b"application/json"


def test_official_response_round_trips_through_ours():
    theirs = official.ProcessingResponse(
        response_headers=official.HeadersResponse(response=official.CommonResponse(
            status=official.CommonResponseResponseStatus.CONTINUE_AND_REPLACE)),
        override_message_timeout=datetime.timedelta(seconds=2),
        request_drain=True,
    )
    ours = pb.ProcessingResponse.FromString(bytes(theirs))
    assert ours.response_headers.response.status == pb.CommonResponse.CONTINUE_AND_REPLACE
    assert ours.override_message_timeout.seconds == 2
    assert ours.request_drain
    assert official.ProcessingResponse.parse(ours.SerializeToString()) == theirs


def test_the_answers_the_server_recovers_with_are_what_envoy_reads():
    from router_extproc.server import _passthrough

    for phase in ("request_headers", "request_body", "response_headers", "response_body", "request_trailers",
                  "response_trailers"):
        theirs = official.ProcessingResponse.parse(_passthrough(phase).SerializeToString())
        assert betterproto2.which_one_of(theirs, "response")[0] == phase


def test_the_canonical_path_rewrite_is_a_path_header_mutation_envoy_reads():
    from router_extproc.server import _mutation

    ours = pb.ProcessingResponse(request_headers=pb.HeadersResponse(response=pb.CommonResponse(
        header_mutation=_mutation({":path": "/v1/chat/completions?a=1"}, ("x-selected-model",)))))
    theirs = official.ProcessingResponse.parse(ours.SerializeToString())
    opt = theirs.request_headers.response.header_mutation.set_headers[0]
    assert (opt.header.key, opt.header.raw_value) == (":path", b"/v1/chat/completions?a=1")
    assert theirs.request_headers.response.header_mutation.remove_headers == ["x-selected-model"]
