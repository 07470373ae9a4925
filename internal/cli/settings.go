package cli

import (
	"fmt"
	"reflect"
	"time"

	"github.com/spf13/pflag"

	"github.com/mtuscope/mtuscope/internal/strictyaml"
)

// A setting is a command-line flag bound to the config field it sets. The
// one entry registers the flag and applies it over the config file, so a
// flag cannot be registered without a target or set the wrong field; the
// field's yaml key (what docs/ pairs the flag with) comes from the field.
type setting[C any] struct {
	flag, short string
	field       func(*C) any // a pointer to the field, in the config given
	usage       string
}

// settingFlags are a command's settings registered on its flag set.
type settingFlags[C any] struct {
	list []setting[C]
	// over holds the flags' values: the defaults until a flag is set, so
	// --help shows the defaults.
	over *C
}

// bindSettings registers every setting of list on fs, its default taken
// from defaults. A field type the table cannot register is a programming
// error: it panics when the command is built (every test builds it).
func bindSettings[C any](fs *pflag.FlagSet, defaults C, list []setting[C]) *settingFlags[C] {
	b := &settingFlags[C]{list: list, over: &defaults}
	for _, s := range list {
		switch p := s.field(b.over).(type) {
		case *string:
			fs.StringVarP(p, s.flag, s.short, *p, s.usage)
		case *int:
			fs.IntVarP(p, s.flag, s.short, *p, s.usage)
		case *float64:
			fs.Float64VarP(p, s.flag, s.short, *p, s.usage)
		case *time.Duration:
			fs.DurationVarP(p, s.flag, s.short, *p, s.usage)
		case *[]int:
			fs.IntSliceVarP(p, s.flag, s.short, *p, s.usage)
		case *[]string:
			fs.StringSliceVarP(p, s.flag, s.short, *p, s.usage)
		default:
			panic(fmt.Sprintf("setting --%s: no flag type for %T", s.flag, p))
		}
	}
	return b
}

// apply copies the value of every flag set on the command line over cfg
// (the defaults, or the config file read over them).
func (b *settingFlags[C]) apply(fs *pflag.FlagSet, cfg *C) {
	for _, s := range b.list {
		if fs.Changed(s.flag) {
			reflect.ValueOf(s.field(cfg)).Elem().Set(reflect.ValueOf(s.field(b.over)).Elem())
		}
	}
}

// keys maps each flag to the config key it sets ("rung-port" to
// "rungs.base_port"); a flag whose field is no config key maps to "".
func (b *settingFlags[C]) keys() map[string]string {
	out := map[string]string{}
	var c C
	for _, s := range b.list {
		k, _ := strictyaml.KeyOf(&c, s.field(&c))
		out[s.flag] = k
	}
	return out
}
