"""Portal forms: they only collect input; the services decide and say what is wrong."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.template.defaultfilters import filesizeformat

from contributors.countries import COUNTRY_CHOICES
from contributors.models import Contributor, Work
from contributors.services.content import max_upload_bytes


def form_errors_from(form: forms.Form, exc: ValidationError) -> None:
    """Attach a service's ValidationError to the form: on the named field when the form has it."""
    if hasattr(exc, "error_dict"):
        for name, errors in exc.error_dict.items():
            form.add_error(name if name in form.fields else None, errors)
    else:
        form.add_error(None, exc)


class WorkForm(forms.Form):
    title = forms.CharField(max_length=Work._meta.get_field("title").max_length)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    file = forms.FileField(required=False, label="Upload a file")
    text_body = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false"}), required=False, strip=False,
        label="Or paste the text",
    )

    def __init__(self, *args, editing: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.editing = editing
        self.fields["file"].help_text = (
            f"Up to {filesizeformat(max_upload_bytes())}. Text, source code, images, audio, video, PDF or EPUB: "
            "the kind is read from the content, not from the file name."
        )
        if editing:
            self.fields["file"].label = "Replace the content with a file"
            self.fields["text_body"].label = "Or replace it with this text"
            self.fields["text_body"].help_text = "Leave both empty to keep the current content."

    def clean(self) -> dict:
        data = super().clean()
        has_file = bool(data.get("file"))
        has_text = bool((data.get("text_body") or "").strip())
        if has_file and has_text:
            raise ValidationError("Give either a file or a text, not both.", code="both")
        if not self.editing and not has_file and not has_text:
            self.add_error("file", "Choose a file to upload, or paste the text below.")
        return data


class WorkFilterForm(forms.Form):
    q = forms.CharField(required=False, label="Search", max_length=200)
    kind = forms.ChoiceField(required=False, choices=[("", "Any kind"), *Work.Kind.choices])
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *Work.Status.choices])
    opted_out = forms.ChoiceField(
        required=False, label="Training",
        choices=[("", "Opted in or out"), ("no", "Available for training"), ("yes", "Opted out")],
    )

    def opted_out_value(self) -> bool | None:
        value = self.cleaned_data.get("opted_out") if self.is_valid() else ""
        return {"yes": True, "no": False}.get(value or "")


class OptOutForm(forms.Form):
    reason = forms.CharField(
        required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}),
        label="Reason (optional, shown to catalog admins)",
    )


class ProfileForm(forms.Form):
    display_name = forms.CharField(
        max_length=Contributor._meta.get_field("display_name").max_length,
        help_text="Shown on your works and to co-owners.",
    )
    legal_name = forms.CharField(
        max_length=Contributor._meta.get_field("legal_name").max_length, required=False,
        help_text="Used on payout statements; not shown to other contributors.",
    )
    country = forms.ChoiceField(choices=COUNTRY_CHOICES, required=False, help_text="Where you are tax resident.")
