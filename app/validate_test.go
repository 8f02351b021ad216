package app_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/glasshouse-dev/glasshouse/app"
)

func fields(err error) []string {
	var ve *app.ValidationError
	if !errors.As(err, &ve) {
		return nil
	}
	var out []string
	for _, f := range ve.Fields {
		out = append(out, f.Field)
	}
	return out
}

func TestSignupValidate(t *testing.T) {
	const good = "Passw0rd!"
	tests := []struct {
		name string
		in   app.Signup
		want string // comma-separated invalid fields, "" when valid
	}{
		{"valid", app.Signup{"alice_1", "alice@example.com", good}, ""},
		{"all empty", app.Signup{}, "username,email,password"},
		{"short username", app.Signup{"ab", "a@example.com", good}, "username"},
		{"long username", app.Signup{strings.Repeat("a", 51), "a@example.com", good}, "username"},
		{"50 chars ok", app.Signup{strings.Repeat("a", 50), "a@example.com", good}, ""},
		{"username dash", app.Signup{"al-ice", "a@example.com", good}, "username"},
		{"username unicode letter", app.Signup{"ålice", "a@example.com", good}, "username"},
		{"username sql", app.Signup{"' OR 1=1 --", "a@example.com", good}, "username"},
		{"email no at", app.Signup{"alice", "alice.example.com", good}, "email"},
		{"email with name", app.Signup{"alice", "Alice <a@example.com>", good}, "email"},
		{"email no dot domain", app.Signup{"alice", "a@localhost", good}, "email"},
		{"email trailing space", app.Signup{"alice", "a@example.com ", good}, "email"},
		{"email too long", app.Signup{"alice", strings.Repeat("a", 250) + "@example.com", good}, "email"},
		{"password short", app.Signup{"alice", "a@example.com", "Pa0!"}, "password"},
		{"password no upper", app.Signup{"alice", "a@example.com", "passw0rd!"}, "password"},
		{"password no lower", app.Signup{"alice", "a@example.com", "PASSW0RD!"}, "password"},
		{"password no digit", app.Signup{"alice", "a@example.com", "Password!"}, "password"},
		{"password no special", app.Signup{"alice", "a@example.com", "Passw0rdX"}, "password"},
		{"password too long", app.Signup{"alice", "a@example.com", strings.Repeat("Aa0!", 33)}, "password"},
		{"password control char", app.Signup{"alice", "a@example.com", "Passw0rd!\x00"}, "password"},
		{"password is username", app.Signup{"Alice_Pw1", "a@example.com", "alice_pW1"}, "password"},
		{"password contains username", app.Signup{"alice", "x@example.com", "ALICE-2024!x"}, "password"},
		{"password is email", app.Signup{"bob", "Carol.Pw1!@example.com", "carol.pw1!@EXAMPLE.com"}, "password"},
		{"password contains email", app.Signup{"bob", "c@example.com", "Xc@example.com1"}, "password"},
		{"password contains email local part", app.Signup{"bob", "carol@example.com", "Carol-2024!"}, "password"},
		{"short local part not checked", app.Signup{"bob", "al@example.com", "Al-2024!xyz"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := strings.Join(fields(tt.in.Validate()), ",")
			if got != tt.want {
				t.Errorf("invalid fields = %q, want %q (err %v)", got, tt.want, tt.in.Validate())
			}
		})
	}
}

func TestPasswordMessageListsEveryMissingClass(t *testing.T) {
	err := app.Signup{"alice", "a@example.com", "aaaaaaaa"}.Validate()
	for _, want := range []string{"uppercase", "digit", "special"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestPasswordContextMessageNamesWhatItContains(t *testing.T) {
	for _, tt := range []struct {
		in   app.Signup
		want string
	}{
		{app.Signup{"alice", "x@example.com", "My-alice-9"}, "password: must not contain the username"},
		{app.Signup{"bob", "carol@example.com", "My-Carol-9"}, "password: must not contain the email address"},
	} {
		if err := tt.in.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Validate(%+v) = %v, want %q", tt.in, err, tt.want)
		}
	}
}

func TestItemInputValidate(t *testing.T) {
	tests := []struct {
		name string
		in   app.ItemInput
		want string
	}{
		{"valid", app.ItemInput{"Milk", "two litres\nsemi-skimmed"}, ""},
		{"empty name", app.ItemInput{"", "x"}, "name"},
		{"blank name", app.ItemInput{"   ", ""}, "name"},
		{"long name", app.ItemInput{strings.Repeat("é", 201), ""}, "name"},
		{"200 runes ok", app.ItemInput{strings.Repeat("é", 200), ""}, ""},
		{"control in name", app.ItemInput{"a\x07b", ""}, "name"},
		{"newline in name", app.ItemInput{"a\nb", ""}, "name"},
		{"long description", app.ItemInput{"a", strings.Repeat("x", 2001)}, "description"},
		{"control in description", app.ItemInput{"a", "x\x00"}, "description"},
		{"both", app.ItemInput{"", strings.Repeat("x", 2001)}, "name,description"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := strings.Join(fields(tt.in.Validate()), ",")
			if got != tt.want {
				t.Errorf("invalid fields = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLoginValidate(t *testing.T) {
	if got := strings.Join(fields(app.Login{}.Validate()), ","); got != "username,password" {
		t.Errorf("empty login: invalid fields %q", got)
	}
	if err := (app.Login{Username: "x", Password: "y"}).Validate(); err != nil {
		t.Errorf("short but present credentials must reach the store (same 401 as a wrong password), got %v", err)
	}
	if got := strings.Join(fields(app.Login{Username: strings.Repeat("a", 51), Password: strings.Repeat("a", 129)}.Validate()), ","); got != "username,password" {
		t.Errorf("oversized login: invalid fields %q", got)
	}
}
