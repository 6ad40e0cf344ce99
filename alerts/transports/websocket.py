"""A notice to the recipient's own open triage pages, through their personal channel group.

The triage consumer (alerts.consumers.AlertConsumer) joins ``alerts.user.<id>`` on connect and
forwards ``notify`` messages. A group nobody has joined swallows the message without an error:
this channel is a hint for someone who is looking, which is why e-mail is always sent as well."""


from channels.layers import get_channel_layer
from django.utils.translation import gettext as _

from alerts.transports import Notice, TransportError
from proplatform import channel_sends

NAME = "websocket"


def user_group(user_id: int) -> str:
    return f"alerts.user.{user_id}"


def send(*, notice: Notice) -> None:
    layer = get_channel_layer()
    if layer is None:
        raise TransportError("No channel layer is configured.")
    if notice.about == "review":
        text = _("Answers from a patient of %(team)s wait for review past the promised time.") % {
            "team": notice.team}
    else:
        text = _("A red alert for a patient of %(team)s waits for acknowledgement.") % {"team": notice.team}
    message = {
        "type": "notify",
        "notification": {
            "alert": notice.alert_id,
            "response": notice.response_id,
            "reason": notice.reason,
            "level": notice.level,
            "team": notice.team,
            "text": text,
            "link": notice.link,
        },
    }
    channel_sends.run(layer, lambda: layer.group_send(user_group(notice.recipient.pk), message))
