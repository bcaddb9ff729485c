"""The Stripe webhook endpoint: verify the signature over the raw body, store the event once, answer fast."""

from __future__ import annotations

import json

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from payouts.services import stripe_event_record, stripe_webhook_verify
from payouts.stripe_client import WebhookSignatureInvalid


class StripeWebhookReceiveApi(APIView):
    # The signature is the authentication; CSRF and sessions do not apply to Stripe's servers.
    authentication_classes: list = []
    permission_classes = [AllowAny]
    # Never throttle Stripe: a burst of events (a payout run) must not turn into refused deliveries.
    throttle_classes: list = []
    renderer_classes = [JSONRenderer]

    class InputSerializer(serializers.Serializer):
        class DataSerializer(serializers.Serializer):
            object = serializers.DictField()

            def validate_object(self, value: dict) -> dict:
                if not isinstance(value.get("id"), str) or not value["id"]:
                    raise serializers.ValidationError("data.object must carry the id of the object")
                return value

        id = serializers.RegexField(r"^evt_[A-Za-z0-9_]+$", max_length=255)
        object = serializers.ChoiceField(choices=["event"])
        type = serializers.RegexField(r"^[a-z_]+(\.[a-z_]+)+$", max_length=100)
        created = serializers.IntegerField(min_value=0)
        account = serializers.RegexField(r"^acct_[A-Za-z0-9_]+$", max_length=255, required=False)
        api_version = serializers.CharField(max_length=50, required=False, allow_null=True, allow_blank=True)
        livemode = serializers.BooleanField(required=False, default=False)
        data = DataSerializer()

    class OutputSerializer(serializers.Serializer):
        received = serializers.BooleanField()
        duplicate = serializers.BooleanField()
        event_id = serializers.CharField()

    @extend_schema(exclude=True)  # Stripe's callback, not part of our public API
    def post(self, request: Request) -> Response:
        raw = request.body  # the exact bytes Stripe signed; never a re-serialised parse
        try:
            stripe_webhook_verify(payload=raw, signature_header=request.headers.get("Stripe-Signature"))
        except (WebhookSignatureInvalid, UnicodeDecodeError) as exc:
            return Response({"detail": f"invalid Stripe-Signature: {exc}"}, status=status.HTTP_400_BAD_REQUEST)
        try:
            payload = json.loads(raw)
        except ValueError:
            return Response({"detail": "the body is not JSON"}, status=status.HTTP_400_BAD_REQUEST)
        serializer = self.InputSerializer(data=payload)
        serializer.is_valid(raise_exception=True)
        event, created = stripe_event_record(event=serializer.validated_data, payload=payload)
        output = self.OutputSerializer({"received": True, "duplicate": not created, "event_id": event.event_id})
        return Response(output.data, status=status.HTTP_200_OK)
